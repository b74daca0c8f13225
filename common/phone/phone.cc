// phone.cc: the toolkit's one C++ file, an extern "C" shim over
// libphonenumber (see wa_phone.h).
//
// wa_phone_parse is libphonenumber's Parse followed by Format(E164),
// GetRegionCodeForNumber, IsValidNumber and IsPossibleNumber. Parse runs a
// dozen ICU regular expressions on every input, which dominates the cost of
// normalizing a broadcast list. Most of those inputs are already "+" and
// digits, and for those Parse reduces to a few steps that this file performs
// directly (the fast path) whenever it can prove the answer is Parse's.
//
// What Parse does with "+" followed by k ASCII digits D (libphonenumber
// PhoneNumberUtil::ParseHelper, with no extension, RFC 3966 or punctuation
// to handle, and the default region playing no part once a "+" is seen):
//
//   1. k < 3 is NOT_A_NUMBER (IsViablePhoneNumber wants 3 digits).
//   2. The country calling code cc is the first of D[0..1), D[0..2), D[0..3)
//      that GetRegionCodeForCountryCode knows; none, or D[0] == '0', is
//      INVALID_COUNTRY_CODE_ERROR (after which Parse may retry the digits
//      as if dialled from the default region).
//   3. The rest N is the national number; fewer than 2 digits is too short.
//   4. N's metadata is that of cc's main region (or of the non-geographic
//      entity). If its national_prefix_for_parsing P matches a prefix of N,
//      that prefix is removed (or, with a transform rule, rewritten), but
//      only if the result S has a "possible" length for cc:
//      TestNumberLength(S) is IS_POSSIBLE or TOO_LONG.
//   5. N of fewer than 2 or more than 17 digits fails; otherwise the number
//      is {cc, N as an integer, Italian leading zeros from N's leading 0s}.
//
// The fast path takes exactly the inputs where steps 1-3 and 5 succeed and
// step 4 provably changes nothing, and builds the PhoneNumber of step 5 by
// hand; everything else goes to Parse. Step 4 changes nothing when
//   - P is empty, or
//   - P can match no non-empty prefix of N, or
//   - there is no transform rule and, for every length m of a non-empty
//     prefix of N that P can match, TestNumberLength of the len(N)-m digits
//     left is neither IS_POSSIBLE nor TOO_LONG (so Parse undoes the strip).
// The set of prefix lengths P can match is computed by a small matcher for
// the regular-expression subset the metadata uses (digits, classes of
// digits, \d, groups, alternation, ?, *, +, {n,m} and $): it follows every
// path, so it finds every end that ICU's backtracking could choose, and more
// never hurts (a needless fallback). A pattern using anything outside that
// subset turns the fast path off for its calling code.
//
// P is not reachable through PhoneNumberUtil's public API, so it is read
// from the metadata compiled into libphonenumber (the same bytes
// PhoneNumberUtil loads at start-up), and cross-checked against the public
// API: each region's calling code and national prefix must agree, or the
// fast path stays off. Possible lengths come from the public API itself
// (IsPossibleNumberWithReason runs the TestNumberLength of step 4, which
// looks at nothing but the length), computed once per calling code and
// length; so is IsPossibleNumber's answer.
//
// The region and validity of a fast-path number are then worked out as
// GetRegionCodeForNumber and IsValidNumberForRegion do it (their
// GetNumberTypeHelper: the general description, then each type's possible
// lengths and full-match pattern; for a calling code of several regions,
// each region's leading digits or patterns, in PhoneNumberUtil's order),
// with the same matcher over the same metadata instead of ICU. Asking
// PhoneNumberUtil cost some 16 us a number, most of the work. A calling
// code whose patterns the matcher does not understand asks it still.
//
// tests/tools/phone-diff compares the two paths on some 55,000 inputs of
// every calling code (tests/phone.bats).

#include "phone/wa_phone.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <list>
#include <set>
#include <string>
#include <vector>

#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

namespace i18n {
namespace phonenumbers {
// Defined in libphonenumber (its generated metadata.cc) but left out of the
// installed headers: the serialized PhoneMetadataCollection it loads.
int metadata_size();
const void *metadata_get();
}  // namespace phonenumbers
}  // namespace i18n

namespace {

using i18n::phonenumbers::PhoneMetadata;
using i18n::phonenumbers::PhoneMetadataCollection;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

const int kMaxCallingCode = 999;  // calling codes have 1 to 3 digits
const size_t kMinNsn = 2;         // PhoneNumberUtil's kMinLengthForNsn
const size_t kMaxNsn = 17;        // PhoneNumberUtil's kMaxLengthForNsn

// ---------------------------------------------------------------------------
// A matcher for national_prefix_for_parsing patterns, over digit strings of
// at most kMaxNsn digits. Sets of string positions are bit masks.

class Pattern {
 public:
	// Parse re; false if it uses syntax outside the subset understood.
	bool Compile(const std::string &re)
	{
		nodes_.clear();
		re_ = re;
		pos_ = 0;
		ok_ = true;
		root_ = Alt();
		ok_ = ok_ && pos_ == re_.size();
		Freeze();
		return ok_;
	}

	// Bit i set: the pattern can match d[0..i) (anchored at the start, as
	// RegExp::Consume does), for some way of matching it.
	uint32_t Ends(const char *d, size_t len) const
	{
		return flat_.empty() ? 0 : Eval(root_, 1u, d, len);
	}

	// Bit c set: digit c can begin a non-empty match.
	unsigned First() const
	{
		bool nullable;
		return flat_.empty() ? 0 : FirstOf(root_, &nullable);
	}

 private:
	enum Kind { kClass, kCat, kAlt, kRep, kEnd };
	struct Node {
		Kind kind;
		unsigned set;  // kClass: bit c for digit c
		int min, max;  // kRep: bounds; max < 0 is unbounded
		std::vector<int> kids;
	};

	// The parsed tree, packed: every node's children side by side in
	// kids_, and nothing of the parse kept (there are thousands of these).
	struct Flat {
		uint8_t kind;
		uint8_t nullable;   // can match the empty string
		uint16_t set;
		uint16_t begin;     // digits a non-empty match can begin with
		int16_t min, max;
		uint32_t first, n;  // children: kids_[first .. first + n)
	};

	void Freeze()
	{
		flat_.clear();
		kids_.clear();
		if (ok_)
			for (const Node &n : nodes_) {
				flat_.push_back(Flat{(uint8_t)n.kind, 0, (uint16_t)n.set,
				    0, (int16_t)n.min, (int16_t)n.max,
				    (uint32_t)kids_.size(), (uint32_t)n.kids.size()});
				kids_.insert(kids_.end(), n.kids.begin(), n.kids.end());
			}
		// Each node's first digits, so Eval drops at once the start
		// positions it cannot match from (most branches of the long
		// alternations in the metadata).
		for (size_t i = 0; i < flat_.size(); i++) {
			bool e;
			flat_[i].begin = (uint16_t)FirstOf((int)i, &e);
			flat_[i].nullable = e;
		}
		flat_.shrink_to_fit();
		kids_.shrink_to_fit();
		std::vector<Node>().swap(nodes_);
		std::string().swap(re_);
	}

	int Add(Kind kind)
	{
		nodes_.push_back(Node{kind, 0, 0, 0, {}});
		return (int)nodes_.size() - 1;
	}

	bool More() const { return pos_ < re_.size(); }
	char Peek() const { return More() ? re_[pos_] : '\0'; }

	static bool Digit(char c) { return c >= '0' && c <= '9'; }

	int Fail()
	{
		ok_ = false;
		pos_ = re_.size();
		return Add(kCat);
	}

	int Alt()
	{
		int first = Cat();
		if (Peek() != '|')
			return first;
		int n = Add(kAlt);
		nodes_[n].kids.push_back(first);
		while (ok_ && Peek() == '|') {
			pos_++;
			int k = Cat();
			nodes_[n].kids.push_back(k);
		}
		return n;
	}

	int Cat()
	{
		int n = Add(kCat);
		while (ok_ && More() && Peek() != '|' && Peek() != ')') {
			int a = Quantified(Atom());
			nodes_[n].kids.push_back(a);
		}
		return n;
	}

	int Atom()
	{
		char c = re_[pos_++];
		if (Digit(c)) {
			int n = Add(kClass);
			nodes_[n].set = 1u << (c - '0');
			return n;
		}
		if (c == '\\') {
			if (Peek() != 'd')
				return Fail();
			pos_++;
			int n = Add(kClass);
			nodes_[n].set = 0x3ff;
			return n;
		}
		if (c == '$')
			return Add(kEnd);
		if (c == '[')
			return Class();
		if (c == '(') {
			if (Peek() == '?') {
				pos_++;
				if (Peek() != ':')
					return Fail();
				pos_++;
			}
			int n = Alt();
			if (Peek() != ')')
				return Fail();
			pos_++;
			return n;
		}
		return Fail();
	}

	int Class()
	{
		unsigned set = 0;
		while (ok_ && Peek() != ']') {
			char c = Peek();
			if (c == '\\' && pos_ + 1 < re_.size() && re_[pos_ + 1] == 'd') {
				set |= 0x3ff;
				pos_ += 2;
			} else if (Digit(c)) {
				char hi = c;
				pos_++;
				if (Peek() == '-' && pos_ + 1 < re_.size() && re_[pos_ + 1] != ']') {
					hi = re_[pos_ + 1];
					if (!Digit(hi) || hi < c)
						return Fail();
					pos_ += 2;
				}
				for (char d = c; d <= hi; d++)
					set |= 1u << (d - '0');
			} else {
				return Fail();  // negation, non-digits, end of pattern
			}
		}
		if (!ok_)
			return Fail();
		pos_++;  // ']'
		int n = Add(kClass);
		nodes_[n].set = set;
		return n;
	}

	bool Number(int *v)
	{
		if (!Digit(Peek()))
			return false;
		*v = 0;
		while (Digit(Peek()) && *v < 1000)
			*v = *v * 10 + (re_[pos_++] - '0');
		return *v < 1000;
	}

	int Quantified(int atom)
	{
		if (!ok_)
			return atom;
		int min, max;
		switch (Peek()) {
		case '?': min = 0; max = 1; break;
		case '*': min = 0; max = -1; break;
		case '+': min = 1; max = -1; break;
		case '{':
			pos_++;
			if (!Number(&min))
				return Fail();
			max = min;
			if (Peek() == ',') {
				pos_++;
				max = -1;
				if (Peek() != '}' && (!Number(&max) || max < min))
					return Fail();
			}
			if (Peek() != '}')
				return Fail();
			break;
		default:
			return atom;
		}
		pos_++;
		// A lazy or possessive quantifier, or a quantified quantifier.
		if (Peek() == '?' || Peek() == '+' || Peek() == '*' || Peek() == '{')
			return Fail();
		int n = Add(kRep);
		nodes_[n].min = min;
		nodes_[n].max = max;
		nodes_[n].kids.push_back(atom);
		return n;
	}

	// The positions where matches of node can end, starting anywhere in s.
	// Pointwise in s, so Eval(a | b) == Eval(a) | Eval(b).
	uint32_t Eval(int id, uint32_t s, const char *d, size_t len) const
	{
		const Flat &n = flat_[id];
		uint32_t r = 0;
		if (!n.nullable) {
			for (uint32_t m = s & ((1u << len) - 1); m; m &= m - 1) {
				int i = __builtin_ctz(m);
				if (n.begin >> (d[i] - '0') & 1)
					r |= 1u << i;
			}
			if (!r)
				return 0;
			s = r;
			r = 0;
		}
		switch ((Kind)n.kind) {
		case kClass:
			for (uint32_t m = s & ((1u << len) - 1); m; m &= m - 1) {
				int i = __builtin_ctz(m);
				if (n.set >> (d[i] - '0') & 1)
					r |= 1u << (i + 1);
			}
			return r;
		case kEnd:
			return s & (1u << len);
		case kCat:
			for (uint32_t c = n.first; c < n.first + n.n; c++) {
				int k = kids_[c];
				if (!s)
					break;
				s = Eval(k, s, d, len);
			}
			return s;
		case kAlt:
			for (uint32_t c = n.first; c < n.first + n.n; c++)
				r |= Eval(kids_[c], s, d, len);
			return r;
		case kRep: {
			uint32_t cur = s;
			if (n.min == 0)
				r = s;
			for (int i = 1; n.max < 0 || i <= n.max; i++) {
				cur = Eval(kids_[n.first], cur, d, len);
				if (i >= n.min) {
					r |= cur;
					if (n.max < 0) {
						// Unbounded: close r under one more repetition.
						for (;;) {
							uint32_t next = r | Eval(kids_[n.first], r, d, len);
							if (next == r)
								break;
							r = next;
						}
						return r;
					}
				}
				if (!cur)
					break;
			}
			return r;
		}
		}
		return 0;
	}

	// Digits that can begin a non-empty match of node; *nullable: it can
	// match the empty string. An over-approximation is fine.
	unsigned FirstOf(int id, bool *nullable) const
	{
		const Flat &n = flat_[id];
		unsigned f = 0;
		bool e;
		switch ((Kind)n.kind) {
		case kClass:
			*nullable = false;
			return n.set;
		case kEnd:
			*nullable = true;
			return 0;
		case kCat:
			*nullable = true;
			for (uint32_t c = n.first; c < n.first + n.n; c++) {
				int k = kids_[c];
				f |= FirstOf(k, &e);
				if (!e) {
					*nullable = false;
					break;
				}
			}
			return f;
		case kAlt:
			*nullable = false;
			for (uint32_t c = n.first; c < n.first + n.n; c++) {
				int k = kids_[c];
				f |= FirstOf(k, &e);
				*nullable = *nullable || e;
			}
			return f;
		case kRep:
			f = FirstOf(kids_[n.first], &e);
			*nullable = e || n.min == 0;
			return n.max == 0 ? 0 : f;
		}
		*nullable = true;
		return 0x3ff;
	}

	std::vector<Node> nodes_;  // while compiling
	std::string re_;
	std::vector<Flat> flat_;
	std::vector<int> kids_;
	size_t pos_ = 0;
	bool ok_ = false;
	int root_ = 0;
};

// ---------------------------------------------------------------------------
// The metadata compiled into libphonenumber: just the fields Parse's national
// prefix step reads, from the protobuf wire format.

// The number descriptions GetNumberTypeHelper consults, general first.
enum {
	kGeneral, kPremiumRate, kTollFree, kSharedCost, kVoip, kPersonal,
	kPager, kUan, kVoicemail, kFixedLine, kMobile, kNDesc
};

struct Desc {
	std::string pattern;       // national_number_pattern
	bool has_lengths = false;  // possible_length given
	uint32_t lengths = 0;      // bit L: L is among them
};

struct MetaEntry {
	std::string id;  // region, or "001" for a non-geographic entity
	int cc = 0;
	std::string national_prefix;
	std::string prefix_for_parsing;
	std::string transform_rule;
	bool has_leading = false;
	std::string leading_digits;
	bool same_mobile_fixed = false;
	Desc desc[kNDesc];
};

class Wire {
 public:
	Wire(const uint8_t *p, size_t n) : p_(p), e_(p + n) {}
	bool Done() const { return p_ == e_; }

	bool Varint(uint64_t *v)
	{
		*v = 0;
		for (int shift = 0; shift < 64; shift += 7) {
			if (p_ == e_)
				return false;
			uint8_t b = *p_++;
			*v |= (uint64_t)(b & 0x7f) << shift;
			if (!(b & 0x80))
				return true;
		}
		return false;
	}

	// Next field: its number, wire type, and for length-delimited fields the
	// bytes; other fields' values are skipped (varints returned in *v).
	bool Field(int *num, int *type, const uint8_t **data, size_t *len, uint64_t *v)
	{
		uint64_t key;
		if (!Varint(&key))
			return false;
		*num = (int)(key >> 3);
		*type = (int)(key & 7);
		switch (*type) {
		case 0:
			return Varint(v);
		case 1:
			return Skip(8);
		case 5:
			return Skip(4);
		case 2:
			if (!Varint(v) || *v > (uint64_t)(e_ - p_))
				return false;
			*data = p_;
			*len = (size_t)*v;
			p_ += *len;
			return true;
		default:
			return false;  // groups: not in this schema
		}
	}

 private:
	bool Skip(size_t n)
	{
		if ((size_t)(e_ - p_) < n)
			return false;
		p_ += n;
		return true;
	}
	const uint8_t *p_, *e_;
};

int DescIndex(int field)
{
	switch (field) {
	case PhoneMetadata::kGeneralDescFieldNumber: return kGeneral;
	case PhoneMetadata::kPremiumRateFieldNumber: return kPremiumRate;
	case PhoneMetadata::kTollFreeFieldNumber: return kTollFree;
	case PhoneMetadata::kSharedCostFieldNumber: return kSharedCost;
	case PhoneMetadata::kVoipFieldNumber: return kVoip;
	case PhoneMetadata::kPersonalNumberFieldNumber: return kPersonal;
	case PhoneMetadata::kPagerFieldNumber: return kPager;
	case PhoneMetadata::kUanFieldNumber: return kUan;
	case PhoneMetadata::kVoicemailFieldNumber: return kVoicemail;
	case PhoneMetadata::kFixedLineFieldNumber: return kFixedLine;
	case PhoneMetadata::kMobileFieldNumber: return kMobile;
	default: return -1;
	}
}

void AddLength(Desc *d, uint64_t v)
{
	d->has_lengths = true;
	if (v < 32)  // -1 ("no numbers of this type") and the like match none
		d->lengths |= 1u << v;
}

bool ReadDesc(const uint8_t *data, size_t len, Desc *d)
{
	using i18n::phonenumbers::PhoneNumberDesc;
	Wire w(data, len);
	while (!w.Done()) {
		int num, type;
		const uint8_t *s = nullptr;
		size_t n = 0;
		uint64_t v;
		if (!w.Field(&num, &type, &s, &n, &v))
			return false;
		if (num == PhoneNumberDesc::kNationalNumberPatternFieldNumber) {
			if (type != 2)
				return false;
			d->pattern.assign((const char *)s, n);
		} else if (num == PhoneNumberDesc::kPossibleLengthFieldNumber) {
			if (type == 0) {
				AddLength(d, v);
			} else if (type == 2) {  // packed
				Wire p(s, n);
				while (!p.Done()) {
					if (!p.Varint(&v))
						return false;
					AddLength(d, v);
				}
			} else {
				return false;
			}
		}
	}
	return true;
}

bool ReadMetadata(std::vector<MetaEntry> *out)
{
	int size = i18n::phonenumbers::metadata_size();
	const void *blob = i18n::phonenumbers::metadata_get();
	if (!blob || size <= 0)
		return false;
	Wire top((const uint8_t *)blob, (size_t)size);
	while (!top.Done()) {
		int num, type;
		const uint8_t *data = nullptr;
		size_t len = 0;
		uint64_t v;
		if (!top.Field(&num, &type, &data, &len, &v))
			return false;
		if (num != PhoneMetadataCollection::kMetadataFieldNumber)
			continue;
		if (type != 2)
			return false;
		MetaEntry m;
		Wire w(data, len);
		while (!w.Done()) {
			const uint8_t *s = nullptr;
			size_t n = 0;
			if (!w.Field(&num, &type, &s, &n, &v))
				return false;
			std::string *str = nullptr;
			int di = DescIndex(num);
			if (di >= 0) {
				if (type != 2 || !ReadDesc(s, n, &m.desc[di]))
					return false;
				continue;
			}
			switch (num) {
			case PhoneMetadata::kLeadingDigitsFieldNumber:
				m.has_leading = true;
				str = &m.leading_digits;
				break;
			case PhoneMetadata::kSameMobileAndFixedLinePatternFieldNumber:
				if (type != 0)
					return false;
				m.same_mobile_fixed = v != 0;
				break;
			case PhoneMetadata::kIdFieldNumber: str = &m.id; break;
			case PhoneMetadata::kNationalPrefixFieldNumber: str = &m.national_prefix; break;
			case PhoneMetadata::kNationalPrefixForParsingFieldNumber: str = &m.prefix_for_parsing; break;
			case PhoneMetadata::kNationalPrefixTransformRuleFieldNumber: str = &m.transform_rule; break;
			case PhoneMetadata::kCountryCodeFieldNumber:
				if (type != 0)
					return false;
				m.cc = (int)(int32_t)v;
				break;
			default:
				break;
			}
			if (str) {
				if (type != 2)
					return false;
				str->assign((const char *)s, n);
			}
		}
		out->push_back(m);
	}
	return true;
}

// ---------------------------------------------------------------------------

// A number description, ready to match: IsNumberMatchingDesc.
struct CDesc {
	bool usable = false;       // a pattern: an empty one matches nothing
	bool has_lengths = false;
	uint32_t lengths = 0;
	Pattern re;

	bool Matches(const char *nsn, size_t len) const
	{
		if (!usable || (has_lengths && !(lengths >> len & 1)))
			return false;
		return re.Ends(nsn, len) >> len & 1;  // RegExp::FullMatch
	}
};

// One region's rules for GetRegionCodeForNumber and IsValidNumberForRegion.
struct RegionRule {
	std::string id;
	bool has_leading = false;
	Pattern leading;
	bool same_mobile_fixed = false;
	CDesc desc[kNDesc];

	// GetNumberTypeHelper(nsn) != UNKNOWN: the general pattern and any
	// type's. Which type does not matter here, so the likeliest for a
	// WhatsApp address go first: mobile (unless it is the fixed-line
	// pattern), fixed line, then the rest.
	bool Valid(const char *nsn, size_t len) const
	{
		if (!desc[kGeneral].Matches(nsn, len))
			return false;
		if (!same_mobile_fixed && desc[kMobile].Matches(nsn, len))
			return true;
		for (int i = kFixedLine; i > kGeneral; i--)
			if (desc[i].Matches(nsn, len))
				return true;
		return false;
	}
};

struct CallingCode {
	bool known = false;      // GetRegionCodeForCountryCode(cc) != "ZZ"
	bool read = false;       // its metadata was found
	bool fast = false;       // the fast path may serve this calling code
	bool transform = false;  // the national prefix has a transform rule
	unsigned first = 0;      // digits that can begin a national prefix match
	uint32_t keep = 0;       // bit L: Parse keeps a strip leaving L digits
	uint32_t possible = 0;   // bit L: an L-digit national number is possible
	std::string pattern;     // national_prefix_for_parsing
	Pattern matcher;
	// Region and validity without PhoneNumberUtil: its regions, in the
	// order GetRegionCodesForCountryCallingCode gives them.
	bool rules_ok = false;
	std::vector<RegionRule> rules;

	// GetRegionCodeForNumber: the only region, or the first whose leading
	// digits begin nsn or whose patterns it matches; NULL for "ZZ".
	const RegionRule *Region(const char *nsn, size_t len) const
	{
		if (rules.size() == 1)
			return &rules[0];
		for (const RegionRule &r : rules)
			if (r.has_leading ? r.leading.Ends(nsn, len) != 0 : r.Valid(nsn, len))
				return &r;
		return nullptr;
	}
};

bool CompileDesc(const Desc &d, CDesc *c)
{
	c->has_lengths = d.has_lengths;
	c->lengths = d.lengths;
	c->usable = !d.pattern.empty();
	return !c->usable || c->re.Compile(d.pattern);
}

struct Tables {
	const PhoneNumberUtil *util;
	bool metadata_ok = false;
	CallingCode cc[kMaxCallingCode + 1];
	std::vector<std::string> regions;
	std::vector<const char *> region_names;
	std::vector<int> codes;

	Tables() : util(PhoneNumberUtil::GetInstance())
	{
		std::set<std::string> rs;
		util->GetSupportedRegions(&rs);
		regions.assign(rs.begin(), rs.end());
		for (const std::string &r : regions)
			region_names.push_back(r.c_str());
		for (int c = 1; c <= kMaxCallingCode; c++) {
			std::string r;
			util->GetRegionCodeForCountryCode(c, &r);
			if (r != "ZZ") {
				cc[c].known = true;
				codes.push_back(c);
			}
		}
		std::vector<MetaEntry> meta;
		metadata_ok = ReadMetadata(&meta) && Check(meta);
		if (!metadata_ok)
			return;
		for (int c : codes) {
			CallingCode &k = cc[c];
			std::string r;
			util->GetRegionCodeForCountryCode(c, &r);
			const MetaEntry *m = Find(meta, r, c);
			if (!m)
				continue;
			k.read = true;
			k.pattern = m->prefix_for_parsing;
			k.transform = !m->transform_rule.empty();
			if (!k.pattern.empty()) {
				if (!k.matcher.Compile(k.pattern))
					continue;
				k.first = k.matcher.First();
			}
			for (size_t len = 1; len <= kMaxNsn; len++) {
				PhoneNumber n;
				n.set_country_code(c);
				uint64_t v = 1;
				for (size_t i = 1; i < len; i++)
					v *= 10;
				n.set_national_number(v);  // len digits
				// Both depend on nothing but the length (TestNumberLength).
				PhoneNumberUtil::ValidationResult res =
				    util->IsPossibleNumberWithReason(n);
				if (res != PhoneNumberUtil::TOO_SHORT &&
				    res != PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY &&
				    res != PhoneNumberUtil::INVALID_LENGTH)
					k.keep |= 1u << len;
				if (util->IsPossibleNumber(n))
					k.possible |= 1u << len;
			}
			k.fast = true;
			k.rules_ok = BuildRules(meta, c, &k);
		}
	}

	// The rules of calling code c's regions, false if any of their
	// patterns is outside what Pattern understands.
	bool BuildRules(const std::vector<MetaEntry> &meta, int c, CallingCode *k) const
	{
		std::list<std::string> ids;
		util->GetRegionCodesForCountryCallingCode(c, &ids);
		if (ids.empty())
			return false;
		for (const std::string &id : ids) {
			const MetaEntry *m = Find(meta, id, c);
			if (!m || m->cc != c)
				return false;
			k->rules.emplace_back();
			RegionRule &r = k->rules.back();
			r.id = id;
			r.has_leading = m->has_leading;
			if (r.has_leading && !r.leading.Compile(m->leading_digits))
				return false;
			r.same_mobile_fixed = m->same_mobile_fixed;
			for (int i = 0; i < kNDesc; i++)
				if (!CompileDesc(m->desc[i], &r.desc[i]))
					return false;
		}
		return true;
	}

	static const MetaEntry *Find(const std::vector<MetaEntry> &meta,
	    const std::string &region, int c)
	{
		const MetaEntry *found = nullptr;
		for (const MetaEntry &m : meta)
			if (m.id == region && (region != "001" || m.cc == c)) {
				if (found)
					return nullptr;  // ambiguous
				found = &m;
			}
		return found;
	}

	// Does the metadata read agree with what PhoneNumberUtil reports?
	bool Check(const std::vector<MetaEntry> &meta) const
	{
		std::set<int> nongeo;
		util->GetSupportedGlobalNetworkCallingCodes(&nongeo);
		if (meta.size() != regions.size() + nongeo.size())
			return false;
		for (const std::string &r : regions) {
			const MetaEntry *m = Find(meta, r, 0);
			std::string ndd;
			util->GetNddPrefixForRegion(r, false, &ndd);
			if (!m || m->cc != util->GetCountryCodeForRegion(r) ||
			    m->national_prefix != ndd)
				return false;
		}
		for (int c : nongeo)
			if (!Find(meta, "001", c))
				return false;
		return true;
	}
};

const Tables &GetTables()
{
	// Built once, thread-safely, and never destroyed: a thread still
	// parsing while the program exits must not find it gone.
	static const Tables *tables = new Tables();
	return *tables;
}

thread_local unsigned long fast_hits;

void SetWhy(char *why, size_t whylen, const char *msg)
{
	// Called on every parse, mostly with "": no printf for a copy.
	if (why && whylen) {
		size_t n = strnlen(msg, whylen - 1);
		memcpy(why, msg, n);
		why[n] = '\0';
	}
}

void CopyRegion(char dst[4], const std::string &region)
{
	if (region == "ZZ" || region.size() > 3)
		dst[0] = '\0';
	else
		memcpy(dst, region.c_str(), region.size() + 1);
}

// The fast path: true if text is "+" and digits and the PhoneNumber Parse
// would produce can be built directly (see the top of this file); then *out
// is filled.
bool FastParse(const Tables &t, const char *s, size_t n, wa_phone *out)
{
	// "+", 1 to 3 digits of calling code, kMinNsn to kMaxNsn digits.
	if (n < 1 + 1 + kMinNsn || n > 1 + 3 + kMaxNsn || s[0] != '+')
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	const char *d = s + 1;
	if (d[0] == '0')
		return false;
	int c = 0;
	size_t cclen = 0;
	for (size_t i = 1; i <= 3; i++) {
		c = c * 10 + (d[i - 1] - '0');
		if (t.cc[c].known) {
			cclen = i;
			break;
		}
	}
	if (!cclen)
		return false;
	const CallingCode &k = t.cc[c];
	if (!k.fast)
		return false;
	const char *nsn = d + cclen;
	size_t len = n - 1 - cclen;
	if (len < kMinNsn || len > kMaxNsn)
		return false;
	if (k.first >> (nsn[0] - '0') & 1) {
		uint32_t ends = k.matcher.Ends(nsn, len) & ~1u;
		if (ends && k.transform)
			return false;
		for (size_t m = 1; m <= len; m++)
			if ((ends >> m & 1) && (m == len || (k.keep >> (len - m) & 1)))
				return false;
	}

	// Format(E164) is "+", the calling code and the national significant
	// number, which is N itself: the text as given.
	memcpy(out->e164, s, n);
	out->e164[n] = '\0';
	// IsPossibleNumber: TestNumberLength of N, which depends on its length.
	out->possible = k.possible >> len & 1;
	fast_hits++;
	if (k.rules_ok) {
		// GetNationalSignificantNumber of the PhoneNumber below is N.
		const RegionRule *r = k.Region(nsn, len);
		// IsValidNumber(n) is IsValidNumberForRegion(n, its region).
		out->valid = r && r->Valid(nsn, len);
		CopyRegion(out->region, r ? r->id : std::string("ZZ"));
		return true;
	}

	PhoneNumber number;
	number.set_country_code(c);
	if (nsn[0] == '0') {  // SetItalianLeadingZerosForPhoneNumber
		number.set_italian_leading_zero(true);
		int zeros = 1;
		while ((size_t)zeros < len - 1 && nsn[zeros] == '0')
			zeros++;
		if (zeros != 1)
			number.set_number_of_leading_zeros(zeros);
	}
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (uint64_t)(nsn[i] - '0');
	number.set_national_number(v);
	std::string region;
	t.util->GetRegionCodeForNumber(number, &region);
	CopyRegion(out->region, region);
	out->valid = t.util->IsValidNumberForRegion(number, region);
	return true;
}

// "+" then digits written with the separators people use: spaces, hyphens,
// dots and parentheses, as in "+972 (50) 123-4567". Parse reads such text
// exactly as the "+" and its digits alone: ExtractPossibleNumber keeps it
// whole (it starts with "+" and has no "/" or "x" to begin a second
// number), it is a viable number (VALID_PHONE_NUMBER allows any mix of
// these with 3 or more digits), no extension pattern can match without a
// letter, "#", "," or ";", and after the "+" the text is normalized to its
// digits before anything else reads it. So it goes to the fast path as
// "+" and digits; past Parse's 250-character limit it does not.
bool FastParseFormatted(const Tables &t, const char *s, size_t n, wa_phone *out)
{
	char buf[1 + 3 + kMaxNsn + 1];
	size_t k = 0;

	if (n < 2 || n > 250 || s[0] != '+')
		return false;
	buf[k++] = '+';
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			if (k == sizeof buf - 1)
				return false;
			buf[k++] = c;
		} else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
			return false;
		}
	}
	if (k == n)
		return false;  // nothing to strip: FastParse already said no
	buf[k] = '\0';
	return FastParse(t, buf, k, out);
}

// Does the number text begin (as Parse reads it) with a plus sign?
bool StartsWithPlus(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '+')
			return true;
		if (p[i] >= '0' && p[i] <= '9')
			return false;
		if (i + 2 < n && p[i] == 0xef && p[i + 1] == 0xbc) {
			if (p[i + 2] == 0x8b)  // U+FF0B FULLWIDTH PLUS SIGN
				return true;
			if (p[i + 2] >= 0x90 && p[i + 2] <= 0x99)  // fullwidth digit
				return false;
		}
	}
	return false;
}

int RegionOk(const Tables &t, const char *region, char norm[3])
{
	norm[0] = '\0';
	if (!region || strlen(region) != 2)
		return 0;
	for (int i = 0; i < 2; i++) {
		char c = region[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z') {
			norm[0] = '\0';
			return 0;
		}
		norm[i] = c;
	}
	norm[2] = '\0';
	return std::binary_search(t.regions.begin(), t.regions.end(),
	    std::string(norm, 2)) ? 1 : 0;
}

int SlowParse(const Tables &t, const char *text, size_t n, const char *region,
    wa_phone *out, char *why, size_t whylen)
{
	std::string reg("ZZ");
	if (region && *region) {
		reg = region;
		for (char &c : reg)
			if (c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
	}
	PhoneNumber number;
	PhoneNumberUtil::ErrorType err =
	    t.util->Parse(std::string(text, n), reg, &number);
	switch (err) {
	case PhoneNumberUtil::NO_PARSING_ERROR:
		break;
	case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR: {
		char norm[3];
		if (StartsWithPlus(text, n) || RegionOk(t, region, norm))
			SetWhy(why, whylen, "invalid country calling code");
		else if (!region || !*region)
			SetWhy(why, whylen, "no region to read a national number in");
		else
			SetWhy(why, whylen, "unknown region: cannot read a national number");
		return -1;
	}
	case PhoneNumberUtil::NOT_A_NUMBER:
		SetWhy(why, whylen, "not a number");
		return -1;
	case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
	case PhoneNumberUtil::TOO_SHORT_NSN:
		SetWhy(why, whylen, "too short");
		return -1;
	case PhoneNumberUtil::TOO_LONG_NSN:
		SetWhy(why, whylen, "too long");
		return -1;
	default:
		SetWhy(why, whylen, "not a phone number");
		return -1;
	}
	std::string e164;
	t.util->Format(number, PhoneNumberUtil::E164, &e164);
	if (e164.size() >= sizeof out->e164) {
		SetWhy(why, whylen, "too long");
		return -1;
	}
	memcpy(out->e164, e164.c_str(), e164.size() + 1);
	std::string rc;
	t.util->GetRegionCodeForNumber(number, &rc);
	CopyRegion(out->region, rc);
	out->valid = t.util->IsValidNumber(number);
	out->possible = t.util->IsPossibleNumber(number);
	return 0;
}

const PhoneNumberUtil::PhoneNumberType kTypes[WA_PHONE_NTYPES] = {
	PhoneNumberUtil::FIXED_LINE, PhoneNumberUtil::MOBILE,
	PhoneNumberUtil::FIXED_LINE_OR_MOBILE, PhoneNumberUtil::TOLL_FREE,
	PhoneNumberUtil::PREMIUM_RATE, PhoneNumberUtil::SHARED_COST,
	PhoneNumberUtil::VOIP, PhoneNumberUtil::PERSONAL_NUMBER,
	PhoneNumberUtil::PAGER, PhoneNumberUtil::UAN, PhoneNumberUtil::VOICEMAIL,
};

}  // namespace

extern "C" {

int wa_phone_parse(const char *text, size_t n, const char *region, int flags,
    struct wa_phone *out, char *why, size_t whylen)
{
	try {
		if (!text || !out) {
			SetWhy(why, whylen, "not a number");
			return -1;
		}
		const Tables &t = GetTables();
		if (!(flags & WA_PHONE_FAST_OFF) && (FastParse(t, text, n, out) ||
		    FastParseFormatted(t, text, n, out))) {
			SetWhy(why, whylen, "");
			return 0;
		}
		int rc = SlowParse(t, text, n, region, out, why, whylen);
		if (rc == 0)
			SetWhy(why, whylen, "");
		return rc;
	} catch (...) {
		SetWhy(why, whylen, "internal error in the phone number library");
		return -1;
	}
}

int wa_phone_region_ok(const char *region, char norm[3])
{
	try {
		return RegionOk(GetTables(), region, norm);
	} catch (...) {
		norm[0] = '\0';
		return 0;
	}
}

const char *const *wa_phone_regions(size_t *n)
{
	try {
		const Tables &t = GetTables();
		*n = t.region_names.size();
		return t.region_names.data();
	} catch (...) {
		*n = 0;
		return nullptr;
	}
}

const int *wa_phone_calling_codes(size_t *n)
{
	try {
		const Tables &t = GetTables();
		*n = t.codes.size();
		return t.codes.data();
	} catch (...) {
		*n = 0;
		return nullptr;
	}
}

int wa_phone_example(const char *region, int cc, enum wa_phone_type type,
    char e164[24])
{
	try {
		const Tables &t = GetTables();
		PhoneNumber number;
		bool ok;
		if (region) {
			char norm[3];
			if (!RegionOk(t, region, norm) || type < 0 || type >= WA_PHONE_NTYPES)
				return -1;
			ok = t.util->GetExampleNumberForType(norm, kTypes[type], &number);
		} else {
			ok = t.util->GetExampleNumberForNonGeoEntity(cc, &number);
		}
		if (!ok)
			return -1;
		std::string s;
		t.util->Format(number, PhoneNumberUtil::E164, &s);
		if (s.size() >= 24)
			return -1;
		memcpy(e164, s.c_str(), s.size() + 1);
		return 0;
	} catch (...) {
		return -1;
	}
}

int wa_phone_ndd(const char *region, char *out, size_t outlen)
{
	try {
		const Tables &t = GetTables();
		char norm[3];
		if (!RegionOk(t, region, norm))
			return -1;
		std::string ndd;
		t.util->GetNddPrefixForRegion(norm, true, &ndd);
		if (ndd.size() >= outlen)
			return -1;
		memcpy(out, ndd.c_str(), ndd.size() + 1);
		return 0;
	} catch (...) {
		return -1;
	}
}

const char *wa_phone_prefix_pattern(int cc)
{
	try {
		const Tables &t = GetTables();
		if (!t.metadata_ok || cc < 1 || cc > kMaxCallingCode || !t.cc[cc].read)
			return nullptr;
		return t.cc[cc].pattern.c_str();
	} catch (...) {
		return nullptr;
	}
}

unsigned long wa_phone_fast_count(void)
{
	return fast_hits;
}

int wa_phone_fast_level(int cc)
{
	try {
		const Tables &t = GetTables();
		if (cc < 1 || cc > kMaxCallingCode || !t.metadata_ok || !t.cc[cc].fast)
			return 0;
		return t.cc[cc].rules_ok ? 2 : 1;
	} catch (...) {
		return 0;
	}
}

}  // extern "C"
