// onionhost's byte-size formatter for pages, the twin of onionhost_sdk::size::ByteSize's
// Display: "0 bytes", "1 byte", "12 bytes", then powers of 1024 with one decimal, a ".0"
// dropped ("1.5 KiB", "60 MiB", "3 GiB"), tenths rounded half up in integers (BigInt), and a
// value that rounds to 1024 of a unit shown in the next one. sdk/tests/size_js.rs checks that
// both give the same text.
"use strict";

function onionhostBytes(bytes) {
  const n = BigInt(bytes);
  if (n < 1024n) {
    return n === 1n ? "1 byte" : n.toString() + " bytes";
  }
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let divisor = 1024n;
  for (let i = 0; i < units.length; i++) {
    const tenths = (n * 10n + divisor / 2n) / divisor;
    if (tenths < 10240n || i === units.length - 1) {
      const whole = (tenths / 10n).toString();
      const tenth = tenths % 10n;
      return (tenth === 0n ? whole : whole + "." + tenth.toString()) + " " + units[i];
    }
    divisor *= 1024n;
  }
  return n.toString() + " bytes";
}

if (typeof module !== "undefined") {
  module.exports = { onionhostBytes };
}
