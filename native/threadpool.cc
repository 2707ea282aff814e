#include "threadpool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace mb {
namespace {

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable wake, done;
  const std::function<void(int)>* job = nullptr;
  int numTasks = 0;
  std::atomic<int> nextTask{0};
  int busy = 0;           // workers still inside the current job
  uint64_t generation = 0;
  bool stopping = false;

  void runTasks() {
    for (;;) {
      int t = nextTask.fetch_add(1, std::memory_order_relaxed);
      if (t >= numTasks) return;
      (*job)(t);
    }
  }

  void workerLoop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return stopping || generation != seen; });
        if (stopping) return;
        seen = generation;
      }
      runTasks();
      std::lock_guard<std::mutex> lock(mu);
      if (--busy == 0) done.notify_one();
    }
  }

  void start(int threads) {
    stop();
    stopping = false;
    for (int i = 1; i < threads; i++) workers.emplace_back([this] { workerLoop(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    wake.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }

  ~Pool() { stop(); }
};

Pool& pool() {
  static Pool p;
  return p;
}

int defaultThreads() {
  if (const char* env = std::getenv("MODERNBERT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? int(hw) : 1;
}

int& threadCount() {
  static int n = 0;
  return n;
}

void ensureStarted() {
  if (threadCount() == 0) set_num_threads(0);
}

}  // namespace

int num_threads() {
  ensureStarted();
  return threadCount();
}

void set_num_threads(int n) {
  if (n <= 0) n = defaultThreads();
  if (n == threadCount()) return;
  threadCount() = n;
  pool().start(n);
}

void parallel_for(int numTasks, const std::function<void(int)>& fn) {
  ensureStarted();
  Pool& p = pool();
  if (numTasks <= 0) return;
  if (numTasks == 1 || p.workers.empty()) {
    for (int t = 0; t < numTasks; t++) fn(t);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.job = &fn;
    p.numTasks = numTasks;
    p.nextTask.store(0, std::memory_order_relaxed);
    p.busy = int(p.workers.size());
    p.generation++;
  }
  p.wake.notify_all();
  p.runTasks();
  std::unique_lock<std::mutex> lock(p.mu);
  p.done.wait(lock, [&] { return p.busy == 0; });
  p.job = nullptr;
}

}  // namespace mb
