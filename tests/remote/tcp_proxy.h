// A TCP proxy on loopback in front of the object store, for tests that need
// "the server stopped in the middle of an upload, then restarted" while the
// real server keeps serving everyone else (it is shared: never stopped).
//
//   TcpProxy proxy(18080);                 // forwards 127.0.0.1:<proxy.port()> there
//   proxy.CutAfter(2 << 20);               // after 2 MiB sent upstream: every
//                                          // connection closed, nothing listens
//   proxy.WaitUntilCut();
//   proxy.Resume();                        // listening again on the same port
//
// While cut, connections are refused, exactly as when the server is down.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace snapshot_test {

class TcpProxy {
 public:
  explicit TcpProxy(int target_port) : target_port_(target_port) {
    Listen(0);
    thread_ = std::thread([this] { Run(); });
  }
  ~TcpProxy() {
    stop_ = true;
    thread_.join();
    CloseAll();
  }
  int port() const { return port_; }

  // After `bytes` more bytes go upstream, the "server" stops.
  void CutAfter(int64_t bytes) { budget_ = bytes; }
  bool cut() const { return cut_; }
  void WaitUntilCut() {
    for (int i = 0; i < 60000 && !cut_; i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Resume() {
    std::lock_guard<std::mutex> l(mu_);
    budget_ = -1;
    Listen(port_);
    cut_ = false;
  }

 private:
  void Listen(int port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }

  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(target_port_));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void CloseAll() {
    for (auto& p : pairs_) {
      ::close(p.first);
      ::close(p.second);
    }
    pairs_.clear();
    if (listener_ >= 0) ::close(listener_);
    listener_ = -1;
  }

  void Run() {
    char buf[64 * 1024];
    while (!stop_) {
      std::unique_lock<std::mutex> l(mu_);
      std::vector<pollfd> fds;
      if (listener_ >= 0) fds.push_back({listener_, POLLIN, 0});
      for (auto& p : pairs_) {
        fds.push_back({p.first, POLLIN, 0});
        fds.push_back({p.second, POLLIN, 0});
      }
      l.unlock();
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      l.lock();
      if (cut_) continue;  // a Resume() came meanwhile or not: start over
      size_t i = 0;
      if (listener_ >= 0 && fds[i++].revents & POLLIN) {
        int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        int server = client >= 0 ? Connect() : -1;
        if (server >= 0) {
          pairs_.push_back({client, server});
        } else if (client >= 0) {
          ::close(client);
        }
      }
      std::vector<size_t> dead;
      for (size_t p = 0; p < pairs_.size() && i + 1 < fds.size() + 1; p++, i += 2) {
        for (int side = 0; side < 2; side++) {
          if (i + side >= fds.size() || !(fds[i + side].revents & (POLLIN | POLLHUP | POLLERR))) continue;
          const int from = side == 0 ? pairs_[p].first : pairs_[p].second;
          const int to = side == 0 ? pairs_[p].second : pairs_[p].first;
          ssize_t n = ::read(from, buf, sizeof buf);
          if (n > 0 && side == 0 && budget_ >= 0) {
            n = std::min<ssize_t>(n, ssize_t(budget_));
            budget_ -= n;
          }
          if (n <= 0 || ::write(to, buf, size_t(n)) != n) dead.push_back(p);
          if (side == 0 && budget_ == 0) {
            CloseAll();  // the server stops: every connection, and the listener
            cut_ = true;
            break;
          }
        }
        if (cut_) break;
      }
      if (cut_) continue;
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
        if (it + 1 != dead.rend() && *(it + 1) == *it) continue;
        ::close(pairs_[*it].first);
        ::close(pairs_[*it].second);
        pairs_.erase(pairs_.begin() + long(*it));
      }
    }
  }

  const int target_port_;
  int port_ = 0;
  int listener_ = -1;
  std::vector<std::pair<int, int>> pairs_;  // client, server
  std::atomic<int64_t> budget_{-1};         // bytes still allowed upstream; -1: no limit
  std::atomic<bool> cut_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::thread thread_;
};

}  // namespace snapshot_test
