# The fuzz tests' ctest entries (label fuzz), included by tests/CMakeLists.txt. The fuzzers are a
# project of their own built with clang (tests/fuzz/CMakeLists.txt); the entries build it at test
# time, through tests/fuzz/run_fuzz.sh, into <build>/fuzz/build (kept, so later runs rebuild only
# what changed), then run each fuzzer on its corpus for POOLGUARD_FUZZ_SECONDS:
#
#   fuzz_build      configures and builds the fuzzers (fails, loudly, without clang or libFuzzer)
#   fuzz_api        api_fuzzer: replays regressions/api_fuzzer/, then fuzzes from corpus/api_fuzzer/
#   fuzz_api_sampled  api_fuzzer_sampled (guard sampling and the sampled profile on): the same,
#                   plus regressions/api_fuzzer_sampled/
#   fuzz_options    options_fuzzer: the same for the option parser
#   fuzz_segment    segment_fuzzer: the same for the statistics and profile segment readers
#   fuzz_recording  recording_fuzzer: the same for the recordings `poolguard plot` reads
#
# A crash, a sanitizer report or a model mismatch fails the entry; the input is left in
# <build>/fuzz/artifacts/<fuzzer>/.
set(POOLGUARD_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzzer runs in the test suite")
set(PG_FUZZ_DIR ${CMAKE_BINARY_DIR}/fuzz)

# The core's sources and flags, as the top-level CMakeLists.txt declares them, for the fuzz
# project (rewritten only when they change, so that it does not reconfigure for nothing).
file(CONFIGURE OUTPUT ${PG_FUZZ_DIR}/core.cmake @ONLY CONTENT
"# Written by tests/fuzz/tests.cmake when poolguard is configured; read by tests/fuzz/CMakeLists.txt.
set(PG_SOURCE_DIR \"@PROJECT_SOURCE_DIR@\")
set(PG_CORE_SOURCES \"@PG_CORE_SOURCES@\")
set(PG_CORE_FLAGS \"@PG_CORE_FLAGS@\")
set(LIBUNWIND_LIBRARY \"@LIBUNWIND_LIBRARY@\")
")

set(pg_fuzz_script ${CMAKE_CURRENT_LIST_DIR}/run_fuzz.sh)
add_test(NAME fuzz_build COMMAND bash ${pg_fuzz_script} build ${PG_FUZZ_DIR})
# The first build compiles the core with clang, ASan, UBSan and coverage: a few minutes on two
# busy cores.
set_tests_properties(fuzz_build PROPERTIES LABELS "fuzz" TIMEOUT 900 FIXTURES_SETUP pg_fuzzers)
math(EXPR pg_fuzz_timeout "${POOLGUARD_FUZZ_SECONDS} + 240")
foreach(fuzzer api_fuzzer api_fuzzer_sampled options_fuzzer segment_fuzzer recording_fuzzer)
  string(REPLACE "_fuzzer" "" name ${fuzzer})  # fuzz_api, fuzz_api_sampled, fuzz_options, ...
  add_test(NAME fuzz_${name}
           COMMAND bash ${pg_fuzz_script} run ${PG_FUZZ_DIR} ${fuzzer} ${POOLGUARD_FUZZ_SECONDS})
  set_tests_properties(fuzz_${name} PROPERTIES LABELS "fuzz" TIMEOUT ${pg_fuzz_timeout}
                       FIXTURES_REQUIRED pg_fuzzers)
endforeach()
