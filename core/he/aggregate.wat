;; Raw BFV ciphertext addition for the sync server: coefficient-wise (a + b) mod q over u64 arrays, in WASM SIMD.
;;
;; Compiled by scripts/build-aggregate-wasm.mjs (wabt) into core/he/aggregate-wasm.ts; core/he/aggregate.ts
;; drives it. Lengths are in bytes, multiples of 64 (add runs four vectors per iteration, sub and check two);
;; a ciphertext's coefficient data is 65,536 bytes. Pointers should be 16-byte aligned for speed, not for correctness.
;;
;; Reduction: a, b < q < 2^60, so r = a + b - q lies in (-q, q) and the signed compare i64x2.lt_s(r, 0) is
;; exact; r + (q where r < 0) is SEAL's add_poly_coeffmod ((a + b >= q) ? a + b - q : a + b) bit for bit.
;; (It is the same test as i64x2.ge_s(a + b, q); V8 lowers the compare against zero to one pcmpgtq, which
;; measured twice as fast as ge_s here, 27 vs 13 GB/s in L2.)
;;
;; Validation of untrusted input x (unsigned "x < q"): with d = x - q (wrapping), x < q exactly when d is
;; negative and x is not (as signed i64): x in [0, q) gives d in [-q, 0); x in [q, 2^63) gives d >= 0;
;; x >= 2^63 is negative itself. So the sign bit of d & ~x (v128.andnot d x) is set iff x < q. Lanes are
;; AND-accumulated into $ok; i64x2.bitmask($ok) is 3 iff every input was < q, and functions return
;; bitmask xor 3: zero means valid.
(module
  (memory (export "memory") 2 65536)

  ;; dst[i] = (a[i] + b[i]) mod q, for a[i] < q (the caller's own running sum) and b[i] untrusted.
  ;; Returns nonzero if some b[i] >= q; dst then holds garbage, so callers write to a spare region (or
  ;; a copy) and commit only on zero. dst may equal a. The hot loop: four vectors (64 bytes) per
  ;; iteration, which measured ~10% faster than two; len must be a multiple of 64.
  (func (export "add") (param $dst i32) (param $a i32) (param $b i32) (param $len i32) (param $q i64) (result i32)
    (local $qv v128) (local $zero v128) (local $ok v128) (local $end i32)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local.set $qv (i64x2.splat (local.get $q)))
    (local.set $ok (v128.const i64x2 -1 -1))
    (local.set $end (i32.add (local.get $dst) (local.get $len)))
    (block $done
      (br_if $done (i32.eqz (local.get $len)))
      (loop $next
        (local.set $b0 (v128.load offset=0 (local.get $b)))
        (local.set $b1 (v128.load offset=16 (local.get $b)))
        (local.set $b2 (v128.load offset=32 (local.get $b)))
        (local.set $b3 (v128.load offset=48 (local.get $b)))
        (local.set $ok
          (v128.and (local.get $ok)
            (v128.and
              (v128.and
                (v128.andnot (i64x2.sub (local.get $b0) (local.get $qv)) (local.get $b0))
                (v128.andnot (i64x2.sub (local.get $b1) (local.get $qv)) (local.get $b1)))
              (v128.and
                (v128.andnot (i64x2.sub (local.get $b2) (local.get $qv)) (local.get $b2))
                (v128.andnot (i64x2.sub (local.get $b3) (local.get $qv)) (local.get $b3))))))
        (local.set $r0 (i64x2.sub (i64x2.add (v128.load offset=0 (local.get $a)) (local.get $b0)) (local.get $qv)))
        (local.set $r1 (i64x2.sub (i64x2.add (v128.load offset=16 (local.get $a)) (local.get $b1)) (local.get $qv)))
        (local.set $r2 (i64x2.sub (i64x2.add (v128.load offset=32 (local.get $a)) (local.get $b2)) (local.get $qv)))
        (local.set $r3 (i64x2.sub (i64x2.add (v128.load offset=48 (local.get $a)) (local.get $b3)) (local.get $qv)))
        (v128.store offset=0 (local.get $dst)
          (i64x2.add (local.get $r0) (v128.and (local.get $qv) (i64x2.lt_s (local.get $r0) (local.get $zero)))))
        (v128.store offset=16 (local.get $dst)
          (i64x2.add (local.get $r1) (v128.and (local.get $qv) (i64x2.lt_s (local.get $r1) (local.get $zero)))))
        (v128.store offset=32 (local.get $dst)
          (i64x2.add (local.get $r2) (v128.and (local.get $qv) (i64x2.lt_s (local.get $r2) (local.get $zero)))))
        (v128.store offset=48 (local.get $dst)
          (i64x2.add (local.get $r3) (v128.and (local.get $qv) (i64x2.lt_s (local.get $r3) (local.get $zero)))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
        (local.set $a (i32.add (local.get $a) (i32.const 64)))
        (local.set $b (i32.add (local.get $b) (i32.const 64)))
        (br_if $next (i32.lt_u (local.get $dst) (local.get $end)))))
    (i32.xor (i64x2.bitmask (local.get $ok)) (i32.const 3)))

  ;; acc[i] = (acc[i] - src[i]) mod q, for inputs already known to be < q: the exact undo of add. Used to
  ;; roll back the committed part of a block when a later ciphertext of it turns out invalid.
  (func (export "sub") (param $acc i32) (param $src i32) (param $len i32) (param $q i64)
    (local $qv v128) (local $zero v128) (local $end i32) (local $d0 v128) (local $d1 v128)
    (local.set $qv (i64x2.splat (local.get $q)))
    (local.set $end (i32.add (local.get $acc) (local.get $len)))
    (block $done
      (br_if $done (i32.eqz (local.get $len)))
      (loop $next
        (local.set $d0 (i64x2.sub (v128.load offset=0 (local.get $acc)) (v128.load offset=0 (local.get $src))))
        (local.set $d1 (i64x2.sub (v128.load offset=16 (local.get $acc)) (v128.load offset=16 (local.get $src))))
        (v128.store offset=0 (local.get $acc)
          (i64x2.add (local.get $d0) (v128.and (local.get $qv) (i64x2.lt_s (local.get $d0) (local.get $zero)))))
        (v128.store offset=16 (local.get $acc)
          (i64x2.add (local.get $d1) (v128.and (local.get $qv) (i64x2.lt_s (local.get $d1) (local.get $zero)))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 32)))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (br_if $next (i32.lt_u (local.get $acc) (local.get $end))))))

  ;; Returns nonzero if some src[i] >= q (same test as in add), for inputs no add will see first.
  (func (export "check") (param $src i32) (param $len i32) (param $q i64) (result i32)
    (local $qv v128) (local $ok v128) (local $end i32) (local $x0 v128) (local $x1 v128)
    (local.set $qv (i64x2.splat (local.get $q)))
    (local.set $ok (v128.const i64x2 -1 -1))
    (local.set $end (i32.add (local.get $src) (local.get $len)))
    (block $done
      (br_if $done (i32.eqz (local.get $len)))
      (loop $next
        (local.set $x0 (v128.load offset=0 (local.get $src)))
        (local.set $x1 (v128.load offset=16 (local.get $src)))
        (local.set $ok
          (v128.and (local.get $ok)
            (v128.and
              (v128.andnot (i64x2.sub (local.get $x0) (local.get $qv)) (local.get $x0))
              (v128.andnot (i64x2.sub (local.get $x1) (local.get $qv)) (local.get $x1)))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (br_if $next (i32.lt_u (local.get $src) (local.get $end)))))
    (i32.xor (i64x2.bitmask (local.get $ok)) (i32.const 3)))
)
