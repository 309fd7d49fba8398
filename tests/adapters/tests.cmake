# The external systems of the adapter integration tests (tests/adapters/:
# json-server with idempotency, faults and OAuth2; the nginx sink), checked
# with curl against real processes. Needs node (npm for the first install of
# the pinned json-server) and nginx, both from scripts/bootstrap.sh.
add_test(NAME adapters_infra COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/adapters/selftest.sh)
set_tests_properties(adapters_infra PROPERTIES LABELS integration TIMEOUT 180)
# POST /hooks/{adapter}: the accounting -> loyalty example
# (docs/adapters/accounting.md) against one `ferry serve --adapters`.
add_test(NAME adapters_webhook COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/adapters/webhook_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(adapters_webhook PROPERTIES LABELS integration TIMEOUT 180)
# Issue 6's scenario: a branch books offline, the hub pushes owner, patient
# and appointment to json-server in order with write-back, pulls doctors and
# appointment statuses; config errors and reloads.
add_test(NAME adapters_pms COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/adapters/pms_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(adapters_pms PROPERTIES LABELS integration TIMEOUT 180)
# The push under faults (500s, down, timeouts, 429, a 422 dead letter and
# its retry, SIGKILL mid-push): every change on json-server exactly once.
add_test(NAME adapters_fault COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/adapters/fault_test.sh $<TARGET_FILE:ferry-cli> $<TARGET_FILE:adapter_fixture>)
set_tests_properties(adapters_fault PROPERTIES LABELS fault TIMEOUT 240)
# OAuth2: refresh before expiry, after a forced 401, stored tokens reused
# after a restart, a failing client-credentials grant shown and recovered.
add_test(NAME adapters_oauth COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/adapters/oauth_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(adapters_oauth PROPERTIES LABELS integration TIMEOUT 180)
# Several requests in flight: families written in a random (seeded) order
# arrive exactly once with every reference resolved to the PMS's ids.
add_test(NAME adapters_order COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/adapters/order_test.sh $<TARGET_FILE:ferry-cli>)
set_tests_properties(adapters_order PROPERTIES LABELS integration TIMEOUT 180)
