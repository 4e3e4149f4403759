// dispotify-pki: see pki_tool.h.

#include <iostream>

#include "cli/dispotify-pki/pki_tool.h"

int main(int argc, char** argv) {
  return dispotify::pki_tool::Run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
