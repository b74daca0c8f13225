// Deterministic benchmark corpora for wa-normalize (make bench).
//   node bench-corpus.js e164 N   N records, E.164 and JID form, many countries
//   node bench-corpus.js mixed N  N records, hand-written national (IL) and
//                                 international formats
// Numbers are libphonenumber-js's example mobile numbers with their last
// digits varied by a fixed-seed generator, so every run gets the same input.
'use strict';
const examples = require('libphonenumber-js/examples.mobile.json');
const { parsePhoneNumber } = require('libphonenumber-js/max');

let seed = 20261128;
function rnd(n) { // xorshift32: same sequence on every machine
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
const countries = Object.keys(examples).sort();
function vary(nat) {
  const keep = Math.max(nat.length - 4, 1);
  let tail = '';
  for (let i = keep; i < nat.length; i++) tail += String(rnd(10));
  return nat.slice(0, keep) + tail;
}
const [kind, nstr] = process.argv.slice(2);
const n = Number(nstr);
const out = [];
function flush() { process.stdout.write(out.join('')); out.length = 0; }
for (let i = 0; i < n; i++) {
  let rec;
  if (kind === 'e164') {
    const cc = countries[rnd(countries.length)];
    const p = parsePhoneNumber(examples[cc], cc);
    const digits = p.countryCallingCode + vary(p.nationalNumber);
    rec = rnd(2) ? { to: '+' + digits, i } : { jid: digits + '@s.whatsapp.net', i };
  } else {
    const il = rnd(3) !== 0;
    const cc = il ? 'IL' : countries[rnd(countries.length)];
    const p = parsePhoneNumber(examples[cc], cc);
    const q = parsePhoneNumber('+' + p.countryCallingCode + vary(p.nationalNumber));
    const forms = il
      ? [q.formatNational(), q.formatNational().replace(/-/g, ' '),
         q.formatNational().replace(/\D/g, ''), q.formatInternational(),
         '00' + q.number.slice(1)]
      : [q.formatInternational(), q.formatInternational().replace(/ /g, '-'),
         q.number, '+' + q.countryCallingCode + ' (' + q.nationalNumber.slice(0, 3) + ') ' + q.nationalNumber.slice(3)];
    rec = { to: forms[rnd(forms.length)], name: 'Contact ' + i };
  }
  out.push(JSON.stringify(rec) + '\n');
  if (out.length >= 4096) flush();
}
flush();
