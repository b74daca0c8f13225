/* wa_phone.h: phone numbers through libphonenumber, for C.
 *
 * common/phone.cc is the toolkit's only C++: a shim over Google's
 * libphonenumber (PhoneNumberUtil) so that nothing else sees C++. Every
 * function here is thread-safe and never throws. */
#ifndef WA_PHONE_H
#define WA_PHONE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wa_phone {
	char e164[24];   /* "+972501234567" */
	char region[4];  /* region of the number: "IL"; "001" for non-geographic
	                    numbers; "" if unknown */
	int  valid;      /* PhoneNumberUtil::IsValidNumber */
	int  possible;   /* PhoneNumberUtil::IsPossibleNumber */
};

enum { WA_PHONE_FAST_OFF = 1 };  /* flag: force the Parse path (for tests) */

/* Parse text (n bytes, need not be NUL-terminated, may contain any bytes) as
 * a phone number, reading national numbers in `region` (ISO 3166 alpha-2, any
 * case; NULL or "" = none: then only numbers starting with '+' parse).
 * Returns 0 and fills *out on success; on failure returns -1 and writes a
 * one-line human reason into why (e.g. "not a number", "too short",
 * "too long", "invalid country calling code", "no region to read a national
 * number in"). The result is exactly libphonenumber's Parse(text, region),
 * then Format(E164), GetRegionCodeForNumber, IsValidNumber and
 * IsPossibleNumber. A number that parses but is not possible is returned with
 * possible=0. Text that is '+' and ASCII digits only is read without Parse's
 * regular expressions wherever that provably gives Parse's answer. */
int wa_phone_parse(const char *text, size_t n, const char *region, int flags,
    struct wa_phone *out, char *why, size_t whylen);

/* 1 if region is a region code libphonenumber supports (case-insensitive),
 * else 0. Writes the upper-cased form into norm[3] ("" if it is not two
 * ASCII letters). */
int wa_phone_region_ok(const char *region, char norm[3]);

/* --- for tests and tools ------------------------------------------------ */

/* The supported regions ("AC" ... "ZW", upper case, sorted); *n gets the
 * count. The array lives as long as the program. */
const char *const *wa_phone_regions(size_t *n);

/* The supported country calling codes, ascending (those of the regions and
 * the non-geographic ones such as 800); *n gets the count. */
const int *wa_phone_calling_codes(size_t *n);

/* Number types, in libphonenumber's order (PhoneNumberUtil::PhoneNumberType,
 * without UNKNOWN). */
enum wa_phone_type {
	WA_PHONE_FIXED_LINE, WA_PHONE_MOBILE, WA_PHONE_FIXED_LINE_OR_MOBILE,
	WA_PHONE_TOLL_FREE, WA_PHONE_PREMIUM_RATE, WA_PHONE_SHARED_COST,
	WA_PHONE_VOIP, WA_PHONE_PERSONAL_NUMBER, WA_PHONE_PAGER, WA_PHONE_UAN,
	WA_PHONE_VOICEMAIL,
	WA_PHONE_NTYPES
};

/* The example number of a region for a type (GetExampleNumberForType), or,
 * with region NULL, of the non-geographic calling code cc
 * (GetExampleNumberForNonGeoEntity; type is then ignored), as E.164.
 * 0 on success, -1 if there is none. */
int wa_phone_example(const char *region, int cc, enum wa_phone_type type,
    char e164[24]);

/* The region's national (trunk) prefix, digits only ("0" for IL, "" for IT):
 * GetNddPrefixForRegion. 0 on success, -1 for an unknown region. */
int wa_phone_ndd(const char *region, char *out, size_t outlen);

/* The national_prefix_for_parsing pattern Parse applies after country
 * calling code cc ("" if none), from the metadata compiled into
 * libphonenumber; NULL for an unknown calling code or if the shim could not
 * read the metadata (the fast path is then off). */
const char *wa_phone_prefix_pattern(int cc);

/* How many wa_phone_parse calls of the calling thread took the fast path. */
unsigned long wa_phone_fast_count(void);

/* How "+"-and-digits numbers of calling code cc are read: 0 always by
 * Parse; 1 by the fast path, with region and validity asked of
 * PhoneNumberUtil; 2 by the fast path entirely. */
int wa_phone_fast_level(int cc);

#ifdef __cplusplus
}
#endif

#endif
