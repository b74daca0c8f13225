/* url.c: URLs and header lists (see wa_url.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/wa_url.h"

int
wa_url_http(const char *u)
{
	return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

char *
wa_url_join(const char *base, const char *const *parts)
{
	size_t n = strlen(base), len, i;
	char *url, *p;

	while (n && base[n - 1] == '/')
		n--;
	len = n + 1;
	for (i = 0; parts[i]; i++)
		len += strlen(parts[i]) + 1;
	url = malloc(len);
	if (!url)
		return NULL;
	memcpy(url, base, n);
	p = url + n;
	for (i = 0; parts[i]; i++) {
		*p++ = '/';
		memcpy(p, parts[i], strlen(parts[i]));
		p += strlen(parts[i]);
	}
	*p = '\0';
	return url;
}

struct curl_slist *
wa_header_add(struct curl_slist *l, const char *name, const char *prefix,
    const char *value)
{
	size_t n = strlen(name) + strlen(prefix) + strlen(value) + 3;
	struct curl_slist *nl;
	char *line = malloc(n);

	if (!line) {
		curl_slist_free_all(l);
		return NULL;
	}
	snprintf(line, n, "%s: %s%s", name, prefix, value);
	nl = curl_slist_append(l, line);
	explicit_bzero(line, n);
	free(line);
	if (!nl)
		curl_slist_free_all(l);
	return nl;
}

struct curl_slist *
wa_headers_json_post(const char *name, const char *prefix, const char *secret,
    int no_continue)
{
	struct curl_slist *l, *nl;

	l = wa_header_add(NULL, "Content-Type", "", "application/json");
	if (l && secret)
		l = wa_header_add(l, name, prefix, secret);
	if (!l || !no_continue)
		return l;
	nl = curl_slist_append(l, "Expect:");
	if (!nl)
		curl_slist_free_all(l);
	return nl;
}
