;; Turns the embedded wasm back into bytes (see wasm-text.mjs), in compiled code: a loop over
;; 240 KB in JavaScript runs once, so the engine interprets it (4 to 6 ms of a cold page, as
;; medians); this loop takes under 1 ms.
;;
;; The caller puts the table (3 planes of 128 bytes) at offset 0 and the string's characters, one
;; byte each (it is ASCII), from offset 384. A character stands for the byte plane 0 gives it;
;; after an escape character, the next stands for the byte plane 1 or 2 gives it.
;; `unpack(length, escape1, escape2)` writes the bytes in place from offset 384 (never ahead of
;; what it reads) and returns how many there are.
(module
  (memory (import "unpack" "memory") 1)
  (func (export "unpack") (param $length i32) (param $escape1 i32) (param $escape2 i32) (result i32)
    (local $in i32) (local $out i32) (local $end i32) (local $c i32) (local $plane i32)
    (local.set $in (i32.const 384))
    (local.set $out (i32.const 384))
    (local.set $end (i32.add (i32.const 384) (local.get $length)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $in)))
        (local.set $plane
          (select (i32.const 128)
            (select (i32.const 256) (i32.const 0) (i32.eq (local.get $c) (local.get $escape2)))
            (i32.eq (local.get $c) (local.get $escape1))))
        (if (local.get $plane)
          (then
            (local.set $in (i32.add (local.get $in) (i32.const 1)))
            (local.set $c (i32.load8_u (local.get $in)))))
        (i32.store8 (local.get $out) (i32.load8_u (i32.add (local.get $plane) (local.get $c))))
        (local.set $in (i32.add (local.get $in) (i32.const 1)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $out) (i32.const 384))))
