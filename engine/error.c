/*
 * error.c — ferry_strerror() and ferry_err_name(), generated from the one
 * FERRY_ERRORS list in ferry.h.
 */
#include "ferry.h"

const char *ferry_strerror(int err)
{
	switch (err) {
#define FERRY_ERR_TEXT_(name, code, text)                                      \
	case code:                                                             \
		return text;
		FERRY_ERRORS(FERRY_ERR_TEXT_)
#undef FERRY_ERR_TEXT_
	}
	return "unknown error";
}

const char *ferry_err_name(int err)
{
	switch (err) {
#define FERRY_ERR_NAME_(name, code, text)                                      \
	case code:                                                             \
		return "FERRY_" #name;
		FERRY_ERRORS(FERRY_ERR_NAME_)
#undef FERRY_ERR_NAME_
	}
	return "FERRY_E_UNKNOWN";
}
