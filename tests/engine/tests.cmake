# Engine tests: one executable and ctest entry per engine module.
# ferry_add_test(NAME SOURCE LABEL TIMEOUT [INTERNAL]) is defined in
# tests/CMakeLists.txt; INTERNAL tests may include engine/*.h.
set(FERRY_ENGINE_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/engine)

ferry_add_test(hlc_test ${FERRY_ENGINE_TESTS}/hlc_test.c unit 60 INTERNAL)
ferry_add_test(merge_test ${FERRY_ENGINE_TESTS}/merge_test.c unit 60 INTERNAL)
ferry_add_test(changelog_test ${FERRY_ENGINE_TESTS}/changelog_test.c unit 60
               INTERNAL)
ferry_add_test(node_test ${FERRY_ENGINE_TESTS}/node_test.c unit 60)
ferry_add_test(txn_test ${FERRY_ENGINE_TESTS}/txn_test.c unit 60)
ferry_add_test(sync_test ${FERRY_ENGINE_TESTS}/sync_test.c unit 60)
ferry_add_test(tamper_test ${FERRY_ENGINE_TESTS}/tamper_test.c unit 120
               INTERNAL)

# Property and fault tests (convergence under any delivery order; SIGKILL
# during commits and during sync apply).
ferry_add_test(property_test ${FERRY_ENGINE_TESTS}/property_test.c property
               300)
ferry_add_test(crash_test ${FERRY_ENGINE_TESTS}/crash_test.c fault 300)
ferry_add_test(kv_test ${FERRY_ENGINE_TESTS}/kv_test.c unit 60)
