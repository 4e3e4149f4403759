#include "e2e/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace dispotify::e2e {
namespace {

int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  acceptor_.join();
  ShutdownLinks();
  std::lock_guard lock(mu_);
  for (auto& link : links_) {
    if (link->pump.joinable()) link->pump.join();
    ::close(link->client);
    if (link->server >= 0) ::close(link->server);
  }
  ::close(listen_fd_);
}

void TcpProxy::Cut() {
  {
    std::lock_guard lock(mu_);  // no link accepted before the cut is added after it
    cut_ = true;
  }
  ShutdownLinks();
}

void TcpProxy::Restore() {
  std::lock_guard lock(mu_);
  cut_ = false;
}

void TcpProxy::ShutdownLinks() {
  std::lock_guard lock(mu_);
  for (auto& link : links_) {
    ::shutdown(link->client, SHUT_RDWR);
    if (link->server >= 0) ::shutdown(link->server, SHUT_RDWR);
  }
}

void TcpProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard lock(mu_);
    if (cut_) {
      ::close(client);
      continue;
    }
    auto link = std::make_unique<Link>();
    link->client = client;
    link->server = ConnectLoopback(target_port_);
    Link* raw = link.get();
    // Finished links are reaped here, so a long test does not accumulate threads.
    for (auto it = links_.begin(); it != links_.end();) {
      if ((*it)->finished) {
        (*it)->pump.join();
        ::close((*it)->client);
        if ((*it)->server >= 0) ::close((*it)->server);
        it = links_.erase(it);
      } else {
        ++it;
      }
    }
    raw->pump = std::thread([raw, this] { Pump(raw, &stop_); });
    links_.push_back(std::move(link));
  }
}

void TcpProxy::Pump(Link* link, const std::atomic<bool>* stop) {
  char buf[64 * 1024];
  while (link->server >= 0 && !*stop) {
    pollfd p[2] = {{link->client, POLLIN, 0}, {link->server, POLLIN, 0}};
    if (::poll(p, 2, 100) < 0 && errno != EINTR) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const int from = i == 0 ? link->client : link->server;
      const int to = i == 0 ? link->server : link->client;
      ssize_t n = ::recv(from, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      done = n <= 0 || !WriteAll(to, buf, static_cast<size_t>(n));
    }
    if (done) break;
  }
  ::shutdown(link->client, SHUT_RDWR);
  if (link->server >= 0) ::shutdown(link->server, SHUT_RDWR);
  link->finished = true;
}

}  // namespace dispotify::e2e
