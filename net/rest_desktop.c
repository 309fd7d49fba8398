/*
 * rest_desktop.c — endpoints being written; the route table is empty until then.
 */
#include "hub.h"

const hub_route hub_desktop_routes[] = {{NULL, NULL, NULL, 0}};
