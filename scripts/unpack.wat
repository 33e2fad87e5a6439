;; Turns the embedded wasm back into bytes (see embed-wasm.mjs), in compiled code: a loop over
;; 240 KB in JavaScript runs once, so the engine interprets it (4 to 6 ms of a cold page, as
;; medians); this loop takes under 1 ms.
;;
;; The caller puts `order` (256 bytes: the byte each character stands for) at offset 0 and the
;; string, encoded as UTF-8 by TextEncoder, from offset 256. Every character is below U+0100, so
;; each is one byte (below 0x80) or two (110000xx 10yyyyyy). `unpack(length)` writes the bytes in
;; place from offset 256 (never ahead of what it reads) and returns how many there are.
(module
  (memory (import "unpack" "memory") 1)
  (func (export "unpack") (param $length i32) (result i32)
    (local $in i32) (local $out i32) (local $end i32) (local $c i32)
    (local.set $in (i32.const 256))
    (local.set $out (i32.const 256))
    (local.set $end (i32.add (i32.const 256) (local.get $length)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $in)))
        (if (i32.ge_u (local.get $c) (i32.const 0x80))
          (then
            (local.set $in (i32.add (local.get $in) (i32.const 1)))
            (local.set $c
              (i32.or
                (i32.shl (i32.and (local.get $c) (i32.const 3)) (i32.const 6))
                (i32.and (i32.load8_u (local.get $in)) (i32.const 0x3f))))))
        (i32.store8 (local.get $out) (i32.load8_u (local.get $c)))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $out) (i32.const 256))))
