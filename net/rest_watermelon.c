/*
 * rest_watermelon.c — endpoints being written; the route table is empty until then.
 */
#include "hub.h"

const hub_route hub_watermelon_routes[] = {{NULL, NULL, NULL, 0}};
