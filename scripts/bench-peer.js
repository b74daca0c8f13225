// The peer wa-normalize is measured against: libphonenumber-js (max
// metadata, so validity is checked as fully as libphonenumber does), reading
// the same JSON lines and writing the same fields.
'use strict';
const readline = require('readline');
const { parsePhoneNumberFromString } = require('libphonenumber-js/max');
const region = process.argv[2] || undefined;
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
rl.on('line', (line) => {
  let rec;
  try { rec = JSON.parse(line); } catch (e) { rec = { raw: line, status: 'failed' }; }
  const src = ['to', 'phone', 'jid'].find((k) => rec[k]);
  let text = src ? String(rec[src]) : '';
  if (text.endsWith('@s.whatsapp.net')) text = '+' + text.split('@')[0];
  const p = text && parsePhoneNumberFromString(text, region);
  if (p && p.isPossible()) {
    rec.phone = p.number;
    rec.jid = p.number.slice(1) + '@s.whatsapp.net';
    rec.region = p.country || null;
    rec.valid = p.isValid();
    rec.source = src;
  } else {
    rec.status = 'failed';
    rec.error = { code: 'invalid_phone' };
  }
  out.push(JSON.stringify(rec));
  if (out.length >= 4096) { process.stdout.write(out.join('\n') + '\n'); out.length = 0; }
});
rl.on('close', () => { if (out.length) process.stdout.write(out.join('\n') + '\n'); });
