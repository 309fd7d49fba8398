# Tests of the JSON value codec and the `ferry` command (tools/, net/).
ferry_add_test(json_value_test ${CMAKE_CURRENT_LIST_DIR}/json_value_test.c
               unit 60)
target_link_libraries(json_value_test PRIVATE ferry_net m)

# The whole command, end to end, in fresh temporary directories.
add_test(NAME cli_test
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh
                 $<TARGET_FILE:ferry-cli>)
set_tests_properties(cli_test PROPERTIES LABELS integration TIMEOUT 120)

# The peer settings (`trust`, `peer`, the peers in `status`), end to end.
add_test(NAME cli_net_test
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_net_test.sh
                 $<TARGET_FILE:ferry-cli>)
set_tests_properties(cli_net_test PROPERTIES LABELS integration TIMEOUT 120)

# API keys (`apikey create/ls/revoke`), end to end: tokens shown once and
# never stored.
add_test(NAME cli_apikey_test
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_apikey_test.sh
                 $<TARGET_FILE:ferry-cli>)
set_tests_properties(cli_apikey_test PROPERTIES LABELS integration TIMEOUT 120)

# `ferry adapter` (status, dead letters, reload, check), end to end, with
# adapter_fixture standing in for the serving process: it writes the kv
# entries `ferry serve --adapters` would and reads entries back.
add_executable(adapter_fixture ${CMAKE_CURRENT_LIST_DIR}/adapter_fixture.c)
target_include_directories(adapter_fixture PRIVATE ${PROJECT_SOURCE_DIR}/net)
target_link_libraries(adapter_fixture PRIVATE ferry_net)
ferry_target_defaults(adapter_fixture)
add_test(NAME cli_adapter_test
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_adapter_test.sh
                 $<TARGET_FILE:ferry-cli> $<TARGET_FILE:adapter_fixture>)
set_tests_properties(cli_adapter_test PROPERTIES LABELS integration TIMEOUT 120)

# Secrets (`secret set/ls/rm`), end to end: values in on stdin, never out,
# and never in the store's files.
add_test(NAME cli_secret_test
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_secret_test.sh
                 $<TARGET_FILE:ferry-cli>)
set_tests_properties(cli_secret_test PROPERTIES LABELS integration TIMEOUT 120)
