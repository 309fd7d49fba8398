# libFuzzer targets; included by tests/CMakeLists.txt when
# FERRY_BUILD_FUZZERS is ON. Needs clang. Configure the whole project with
# FERRY_SANITIZE=address,undefined so libferry itself is checked too.
#
# CI (see the comment at the top of segment_fuzz.c):
#   CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
#         -DFERRY_SANITIZE=address,undefined -DFERRY_BUILD_BENCH=OFF
#   cmake --build build-fuzz --target segment_fuzz
#   cp -r tests/fuzz/corpus/segment /tmp/segment-corpus
#   build-fuzz/tests/segment_fuzz -max_total_time=60 /tmp/segment-corpus
# ctest -L fuzz runs a short smoke pass over the checked-in seeds.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FERRY_BUILD_FUZZERS=ON needs clang (libFuzzer)")
endif()

# Coverage feedback from inside libferry, where the decoders live.
target_compile_options(ferry PRIVATE -fsanitize=fuzzer-no-link)

set(FERRY_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)

add_executable(segment_fuzz ${FERRY_FUZZ_DIR}/segment_fuzz.c)
target_include_directories(segment_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/engine)
target_link_libraries(segment_fuzz PRIVATE ferry)
ferry_target_defaults(segment_fuzz)
target_compile_options(segment_fuzz PRIVATE
                       -fsanitize=fuzzer,address,undefined)
target_link_options(segment_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)

# Writes the seed corpus (a real exported batch, a vector, ...) into a
# directory: segment_corpus tests/fuzz/corpus/segment
add_executable(segment_corpus ${FERRY_FUZZ_DIR}/segment_corpus.c)
target_link_libraries(segment_corpus PRIVATE ferry)
ferry_target_defaults(segment_corpus)

# Smoke run: the seeds plus a few thousand mutations. New inputs go to the
# first directory, a scratch one, so the checked-in seeds stay as they are.
set(FERRY_FUZZ_OUT ${CMAKE_CURRENT_BINARY_DIR}/segment-corpus-out)
file(MAKE_DIRECTORY ${FERRY_FUZZ_OUT})
add_test(NAME segment_fuzz_smoke
         COMMAND segment_fuzz -runs=5000 -seed=1 ${FERRY_FUZZ_OUT}
                 ${FERRY_FUZZ_DIR}/corpus/segment)
set_tests_properties(segment_fuzz_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

# Frames from a peer (net/frame.c) and the payload decoders behind them.
# frame.c is compiled into the fuzzer itself, so it gets coverage feedback
# without instrumenting (or waiting on) the rest of ferry_net.
add_executable(frame_fuzz ${FERRY_FUZZ_DIR}/frame_fuzz.c
                          ${PROJECT_SOURCE_DIR}/net/frame.c)
target_include_directories(frame_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/net)
target_link_libraries(frame_fuzz PRIVATE ferry PkgConfig::MSGPACK)
ferry_target_defaults(frame_fuzz)
target_compile_options(frame_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(frame_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)

# Seeds: FERRY_FRAME_CORPUS=tests/fuzz/corpus/frame build/tests/frame_test
set(FERRY_FRAME_FUZZ_OUT ${CMAKE_CURRENT_BINARY_DIR}/frame-corpus-out)
file(MAKE_DIRECTORY ${FERRY_FRAME_FUZZ_OUT})
add_test(NAME frame_fuzz_smoke
         COMMAND frame_fuzz -runs=5000 -seed=1 ${FERRY_FRAME_FUZZ_OUT}
                 ${FERRY_FUZZ_DIR}/corpus/frame)
set_tests_properties(frame_fuzz_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

# The hub's HTTP side (net/hub.c and the endpoint modules) driven through
# hub_handle() with a fake transport: http_fuzz.c implements http_header,
# http_respond and http_on_abort itself, and fakes ferry_net_peers, so
# neither transport_ws.c (libwebsockets) nor net.c (and the sessions behind
# it) is linked. The hub's sources are compiled in for coverage feedback.
# rest_hooks.c borrows the adapters' running configuration (adapter.c),
# which brings in the push and pull engines and libcurl; the imported
# target is per directory, so it is looked up again here.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
find_package(Threads REQUIRED)
add_executable(http_fuzz ${FERRY_FUZZ_DIR}/http_fuzz.c
                         ${PROJECT_SOURCE_DIR}/net/adapter.c
                         ${PROJECT_SOURCE_DIR}/net/adapter_config.c
                         ${PROJECT_SOURCE_DIR}/net/adapter_map.c
                         ${PROJECT_SOURCE_DIR}/net/adapter_pull.c
                         ${PROJECT_SOURCE_DIR}/net/adapter_push.c
                         ${PROJECT_SOURCE_DIR}/net/adapter_state.c
                         ${PROJECT_SOURCE_DIR}/net/apikey.c
                         ${PROJECT_SOURCE_DIR}/net/grant.c
                         ${PROJECT_SOURCE_DIR}/net/hub.c
                         ${PROJECT_SOURCE_DIR}/net/json_value.c
                         ${PROJECT_SOURCE_DIR}/net/kvjson.c
                         ${PROJECT_SOURCE_DIR}/net/rest_desktop.c
                         ${PROJECT_SOURCE_DIR}/net/rest_generic.c
                         ${PROJECT_SOURCE_DIR}/net/rest_hooks.c
                         ${PROJECT_SOURCE_DIR}/net/rest_status.c
                         ${PROJECT_SOURCE_DIR}/net/rest_watermelon.c
                         ${PROJECT_SOURCE_DIR}/net/secret.c
                         ${PROJECT_SOURCE_DIR}/net/template.c
                         ${PROJECT_SOURCE_DIR}/net/trust.c)
target_include_directories(http_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/net
                                             ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(http_fuzz PRIVATE ferry PkgConfig::JANSSON
                                        PkgConfig::MSGPACK PkgConfig::SODIUM
                                        PkgConfig::CURL Threads::Threads)
ferry_target_defaults(http_fuzz)
target_compile_options(http_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(http_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)

# Seeds: a few valid requests per endpoint, in http_fuzz.c's input format.
set(FERRY_HTTP_FUZZ_OUT ${CMAKE_CURRENT_BINARY_DIR}/http-corpus-out)
file(MAKE_DIRECTORY ${FERRY_HTTP_FUZZ_OUT})
add_test(NAME http_fuzz_smoke
         COMMAND http_fuzz -runs=5000 -seed=1 ${FERRY_HTTP_FUZZ_OUT}
                 ${FERRY_FUZZ_DIR}/corpus/http)
set_tests_properties(http_fuzz_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

# The adapters' templates (net/template.c): a template JSON text, a NUL, a
# payload JSON text; compiled both ways and rendered in every mode.
# template.c is compiled into the fuzzer for coverage feedback.
add_executable(template_fuzz ${FERRY_FUZZ_DIR}/template_fuzz.c
                             ${PROJECT_SOURCE_DIR}/net/template.c)
target_include_directories(template_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/net
                                                 ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(template_fuzz PRIVATE ferry PkgConfig::JANSSON)
ferry_target_defaults(template_fuzz)
target_compile_options(template_fuzz PRIVATE
                       -fsanitize=fuzzer,address,undefined)
target_link_options(template_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)

# Seeds: hand-written templates and payloads (one per placeholder form).
set(FERRY_TEMPLATE_FUZZ_OUT ${CMAKE_CURRENT_BINARY_DIR}/template-corpus-out)
file(MAKE_DIRECTORY ${FERRY_TEMPLATE_FUZZ_OUT})
add_test(NAME template_fuzz_smoke
         COMMAND template_fuzz -runs=5000 -seed=1 ${FERRY_TEMPLATE_FUZZ_OUT}
                 ${FERRY_FUZZ_DIR}/corpus/template)
set_tests_properties(template_fuzz_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

# The adapters' configuration file (net/adapter_config.c): JSON text,
# decoded and validated; what parses is walked and freed. The parser and
# what it builds on (templates, grants) are compiled in for coverage.
add_executable(adapter_config_fuzz ${FERRY_FUZZ_DIR}/adapter_config_fuzz.c
                                   ${PROJECT_SOURCE_DIR}/net/adapter_config.c
                                   ${PROJECT_SOURCE_DIR}/net/grant.c
                                   ${PROJECT_SOURCE_DIR}/net/template.c)
target_include_directories(adapter_config_fuzz
                           PRIVATE ${PROJECT_SOURCE_DIR}/net
                                   ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(adapter_config_fuzz PRIVATE ferry PkgConfig::JANSSON)
ferry_target_defaults(adapter_config_fuzz)
target_compile_options(adapter_config_fuzz PRIVATE
                       -fsanitize=fuzzer,address,undefined)
target_link_options(adapter_config_fuzz PRIVATE
                    -fsanitize=fuzzer,address,undefined)

# Seeds: the docs/adapters.md example and variants (each auth type, a
# webhook-only adapter, a few mistakes).
set(FERRY_ADAPTER_CONFIG_FUZZ_OUT
    ${CMAKE_CURRENT_BINARY_DIR}/adapter_config-corpus-out)
file(MAKE_DIRECTORY ${FERRY_ADAPTER_CONFIG_FUZZ_OUT})
add_test(NAME adapter_config_fuzz_smoke
         COMMAND adapter_config_fuzz -runs=5000 -seed=1
                 ${FERRY_ADAPTER_CONFIG_FUZZ_OUT}
                 ${FERRY_FUZZ_DIR}/corpus/adapter_config)
set_tests_properties(adapter_config_fuzz_smoke PROPERTIES LABELS fuzz
                     TIMEOUT 300)
