/* wa_url.h: building a provider's URLs and header lists.
 *
 * Header values are often secrets: every copy made on the way to libcurl
 * is wiped before it is freed. */
#ifndef WA_URL_H
#define WA_URL_H

#include <curl/curl.h>

/* 1 when u starts with http:// or https:// (any case). */
int wa_url_http(const char *u);

/* A base URL without its trailing slashes, then each of the NULL-ended
 * parts after a slash: malloc'd, NULL when out of memory. */
char *wa_url_join(const char *base, const char *const *parts);

/* Append "Name: <prefix><value>" to a header list. NULL on failure, the
 * list freed. */
struct curl_slist *wa_header_add(struct curl_slist *l, const char *name,
    const char *prefix, const char *value);

/* The headers of a JSON POST, plus "Name: <prefix><secret>" when secret
 * is not NULL; with no_continue, "Expect:" too (no 100-continue round trip
 * before a large body). As few as that: libcurl goes over each of them for
 * every request. NULL when out of memory. */
struct curl_slist *wa_headers_json_post(const char *name, const char *prefix,
    const char *secret, int no_continue);

#endif
