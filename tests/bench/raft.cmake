# SPDX-License-Identifier: BSD-3-Clause
# tests/bench/raft.cmake - the Raft core benchmark (included by
# tests/bench/CMakeLists.txt).  It runs the real core inside the simulator
# of tests/sim, so it exists only when that driver is built.  Not a CTest
# test: run build/<dir>/tests/bench/raft_core_bench to get the figure.
if(TARGET sim_cluster)
  add_executable(raft_core_bench ${CMAKE_CURRENT_LIST_DIR}/raft_core_bench.c)
  target_link_libraries(raft_core_bench PRIVATE sim_cluster gr_warnings)
endif()
