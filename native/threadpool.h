// One persistent pool of worker threads; kernels split their work into tasks and call parallel_for.
#pragma once
#include <functional>

namespace mb {

int num_threads();
// n <= 0 picks the default: MODERNBERT_NUM_THREADS, else the number of online cores.
void set_num_threads(int n);
// Runs fn(task) for every task in [0, numTasks) on the pool; the calling thread takes part.
// Blocks until all tasks are done. Not re-entrant: kernels never nest parallel_for.
void parallel_for(int numTasks, const std::function<void(int)>& fn);

}  // namespace mb
