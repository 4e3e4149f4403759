#pragma once
// A TCP forwarder on loopback that a test can cut: the "dropped port" of a partition. Every
// connection accepted on its port is relayed to 127.0.0.1:target. Cut() shuts every relayed
// connection down and makes later ones close at once (the peer sees a refused or reset link, as
// behind a firewall that rejects); Restore() lets new connections through again. Stops (and
// joins its threads) on destruction.

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

namespace dispotify::e2e {

class TcpProxy {
 public:
  // Listens on a free port of 127.0.0.1 (port()).
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  void Cut();
  void Restore();

 private:
  struct Link {
    int client = -1;
    int server = -1;
    std::atomic<bool> finished{false};
    std::thread pump;
  };
  void AcceptLoop();
  static void Pump(Link* link, const std::atomic<bool>* stop);
  void ShutdownLinks();

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::mutex mu_;
  std::list<std::unique_ptr<Link>> links_;
  std::thread acceptor_;
};

}  // namespace dispotify::e2e
