# Network-layer tests: frames, the secure channel, grants and trust, the
# session state machine, and real processes talking ferry.v1.
ferry_add_test(frame_test ${CMAKE_CURRENT_SOURCE_DIR}/net/frame_test.c unit 60 NET)
ferry_add_test(secure_test ${CMAKE_CURRENT_SOURCE_DIR}/net/secure_test.c unit 60 NET)
ferry_add_test(grant_test ${CMAKE_CURRENT_SOURCE_DIR}/net/grant_test.c unit 60 NET)
ferry_add_test(trust_test ${CMAKE_CURRENT_SOURCE_DIR}/net/trust_test.c unit 60 NET)
ferry_add_test(kvjson_test ${CMAKE_CURRENT_SOURCE_DIR}/net/kvjson_test.c unit 60 NET)

# Real `ferry serve`/`ferry sync` processes on 127.0.0.1 (tests/net/*.sh,
# sharing lib.sh). fill_node builds a large store quickly for kill_sync.
add_executable(fill_node ${CMAKE_CURRENT_SOURCE_DIR}/net/fill_node.c)
target_link_libraries(fill_node PRIVATE ferry)
ferry_target_defaults(fill_node)
add_test(NAME net_scenario COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/scenario_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(net_scenario PROPERTIES LABELS integration TIMEOUT 180)
add_test(NAME net_concurrent COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/concurrent_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(net_concurrent PROPERTIES LABELS integration TIMEOUT 180)
add_test(NAME net_kill_sync COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/kill_sync_test.sh $<TARGET_FILE:ferry-cli> $<TARGET_FILE:fill_node>)
set_tests_properties(net_kill_sync PROPERTIES LABELS fault TIMEOUT 180)
add_test(NAME net_untrusted COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/untrusted_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(net_untrusted PROPERTIES LABELS integration TIMEOUT 180)
ferry_add_test(session_test ${CMAKE_CURRENT_SOURCE_DIR}/net/session_test.c unit 120 NET)
# rogue_peer: a misbehaving ferry.v1 peer (transport.h, frame.h, secure.h);
# rogue_test.sh points it at a real `ferry serve`.
add_executable(rogue_peer ${CMAKE_CURRENT_SOURCE_DIR}/net/rogue_peer.c)
target_include_directories(rogue_peer PRIVATE ${PROJECT_SOURCE_DIR}/net)
target_link_libraries(rogue_peer PRIVATE ferry_net)
ferry_target_defaults(rogue_peer)
add_test(NAME net_rogue COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/rogue_test.sh $<TARGET_FILE:ferry-cli> $<TARGET_FILE:rogue_peer> $<TARGET_FILE:fill_node>)
set_tests_properties(net_rogue PROPERTIES LABELS integration TIMEOUT 180)
ferry_add_test(apikey_test ${CMAKE_CURRENT_SOURCE_DIR}/net/apikey_test.c unit 60 NET)
ferry_add_test(rest_json_test ${CMAKE_CURRENT_SOURCE_DIR}/net/rest_json_test.c unit 60 NET)
# The hub's status page, /metrics and /healthz; the page is checked in
# headless Chromium, its screenshot kept under artefacts/.
add_test(NAME net_status_page COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/status_page_test.sh $<TARGET_FILE:ferry-cli> ${CMAKE_BINARY_DIR}/artefacts)
set_tests_properties(net_status_page PROPERTIES LABELS integration TIMEOUT 180)
# The hub's REST side end to end (issue 4): API keys, the generic API, both
# compatibility profiles and bad input, against one `ferry serve --http`.
add_test(NAME net_rest COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/rest_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(net_rest PROPERTIES LABELS integration TIMEOUT 180)
ferry_add_test(secret_test ${CMAKE_CURRENT_SOURCE_DIR}/net/secret_test.c unit 60 NET)
ferry_add_test(template_test ${CMAKE_CURRENT_SOURCE_DIR}/net/template_test.c unit 60 NET)
ferry_add_test(adapter_map_test ${CMAKE_CURRENT_SOURCE_DIR}/net/adapter_map_test.c unit 60 NET)
ferry_add_test(adapter_config_test ${CMAKE_CURRENT_SOURCE_DIR}/net/adapter_config_test.c unit 60 NET)
