;; Raw BFV ciphertext addition for the sync server: coefficient-wise (a + b) mod q over u64 arrays, in WASM SIMD;
;; and, last in this file, the robot's BFV plaintext scaling (add_scaled_plain, scalar i64), see core/he/encrypt-kernel.ts.
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

  ;; Plaintext scaling for BFV encryption (the robot, not the server): SEAL 4.1's
  ;; multiply_add_plain_with_scaling_variant for one coefficient modulus, which encrypt() runs after
  ;; encrypting zero:  c0[i] = (c0[i] + m[i] * floor(q/t) + fix_i) mod q,
  ;;                   fix_i = floor((m[i] * (q mod t) + floor((t + 1) / 2)) / t)     (round(q * m / t))
  ;; for i < $n, over u64 arrays. SEAL divides that up-to-72-bit numerator bit by bit
  ;; (divide_uint128_inplace: ~300 ns a coefficient in node-seal's WASM, 60% of an encryption); here the
  ;; quotient is estimated in f64 and made exact with wrapping i64 arithmetic. Bounds, which the caller
  ;; checks: t < 2^36 and q < 2^61, m[i] < t. The f64 numerator (products of exact f64 operands) is within
  ;; 2^19 of the true one, so the estimate is within 1 of the floor; num - est * t, computed mod 2^64, is
  ;; then the true difference in (-2t, 2t), and at most one correction each way makes fix exact.
  ;; m * floor(q/t) < q and fix < t, so one conditional subtract reduces each sum. Returns nonzero if some
  ;; m[i] >= t or c0[i] >= q (the output is then meaningless; the caller refuses it).
  ;; core/he/encrypt-kernel.test.ts checks it byte for byte against SEAL's Evaluator.addPlain.
  (func (export "add_scaled_plain") (param $c0 i32) (param $m i32) (param $n i32) (param $q i64) (param $t i64) (param $qmodt i64) (param $delta i64) (result i32)
    (local $end i32) (local $bad i32) (local $mi i64) (local $fix i64) (local $rem i64) (local $v i64) (local $c i64) (local $half i64)
    (local $tf f64) (local $rf f64) (local $halff f64)
    (local.set $half (i64.shr_u (i64.add (local.get $t) (i64.const 1)) (i64.const 1)))
    (local.set $tf (f64.convert_i64_u (local.get $t)))
    (local.set $rf (f64.convert_i64_u (local.get $qmodt)))
    (local.set $halff (f64.convert_i64_u (local.get $half)))
    (local.set $end (i32.add (local.get $c0) (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $mi (i64.load (local.get $m)))
        (local.set $bad (i32.or (local.get $bad) (i64.ge_u (local.get $mi) (local.get $t))))
        ;; estimate, then the exact remainder (wrapping): num - fix * t
        (local.set $fix (i64.trunc_sat_f64_u
          (f64.div (f64.add (f64.mul (f64.convert_i64_u (local.get $mi)) (local.get $rf)) (local.get $halff)) (local.get $tf))))
        (local.set $rem (i64.sub (i64.add (i64.mul (local.get $mi) (local.get $qmodt)) (local.get $half))
                                 (i64.mul (local.get $fix) (local.get $t))))
        (if (i64.lt_s (local.get $rem) (i64.const 0))
          (then (local.set $fix (i64.sub (local.get $fix) (i64.const 1)))
                (local.set $rem (i64.add (local.get $rem) (local.get $t)))))
        (if (i64.ge_s (local.get $rem) (local.get $t))
          (then (local.set $fix (i64.add (local.get $fix) (i64.const 1)))
                (local.set $rem (i64.sub (local.get $rem) (local.get $t)))))
        ;; a remainder still outside [0, t) means the bounds above did not hold
        (local.set $bad (i32.or (local.get $bad)
          (i32.or (i64.lt_s (local.get $rem) (i64.const 0)) (i64.ge_s (local.get $rem) (local.get $t)))))
        (local.set $v (i64.add (i64.mul (local.get $mi) (local.get $delta)) (local.get $fix)))
        (if (i64.ge_u (local.get $v) (local.get $q)) (then (local.set $v (i64.sub (local.get $v) (local.get $q)))))
        (local.set $c (i64.load (local.get $c0)))
        (local.set $bad (i32.or (local.get $bad) (i64.ge_u (local.get $c) (local.get $q))))
        (local.set $c (i64.add (local.get $c) (local.get $v)))
        (if (i64.ge_u (local.get $c) (local.get $q)) (then (local.set $c (i64.sub (local.get $c) (local.get $q)))))
        (i64.store (local.get $c0) (local.get $c))
        (local.set $c0 (i32.add (local.get $c0) (i32.const 8)))
        (local.set $m (i32.add (local.get $m) (i32.const 8)))
        (br_if $next (i32.lt_u (local.get $c0) (local.get $end)))))
    (local.get $bad))
)
