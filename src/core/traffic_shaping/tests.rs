use super::bucket::murmur_bucket;
use super::*;

/// Tests of the analysis roll back by themselves (the default is off, as the original).
fn cfg(pct: f64) -> Config {
    Config {
        bp: percent_to_bp("percentage", pct).unwrap(),
        auto_rollback: true,
        ..Config::default()
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

#[test]
fn raising_the_percentage_keeps_every_user_already_in() {
    let mut s = RolloutSet::new();
    let (id, _) = s.start("search-v2", cfg(10.0), 0.0).unwrap();
    let ks = keys(50_000);
    let at10: Vec<bool> = ks.iter().map(|k| s.get(id).unwrap().decide(k)).collect();
    s.set_percentage("search-v2", 2000, "", 1.0).unwrap();
    let at20: Vec<bool> = ks.iter().map(|k| s.get(id).unwrap().decide(k)).collect();
    assert!(
        at10.iter().zip(&at20).all(|(a, b)| !a || *b),
        "nobody in the 10 % left at 20 %"
    );
    let n10 = at10.iter().filter(|x| **x).count() as f64 / ks.len() as f64;
    let n20 = at20.iter().filter(|x| **x).count() as f64 / ks.len() as f64;
    assert!(
        (n10 - 0.10).abs() < 0.01 && (n20 - 0.20).abs() < 0.01,
        "{n10} {n20}"
    );
}

#[test]
fn buckets_are_uniform_chi_square_over_a_million_keys() {
    let bins = 100usize;
    let mut counts = vec![0u64; bins];
    let n = 1_000_000;
    for i in 0..n {
        let b = murmur_bucket("checkout-v3", &format!("{i}"));
        counts[(b as usize) * bins / BUCKETS as usize] += 1;
    }
    let expected = n as f64 / bins as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // 99 degrees of freedom: the 0.999 quantile is about 148.2.
    assert!(chi2 < 148.2, "chi-square {chi2}");
}

#[test]
fn deny_beats_allow_and_0_and_100_are_absolute() {
    let mut s = RolloutSet::new();
    let mut c = cfg(0.0);
    c.allow.insert("vip".into());
    c.deny.insert("vip".into());
    c.allow.insert("beta".into());
    let (id, _) = s.start("f", c, 0.0).unwrap();
    let r = s.get(id).unwrap();
    assert!(!r.decide("vip"));
    assert!(r.decide("beta"));
    assert!(!r.decide("anyone"));
    s.set_percentage("f", 10_000, "", 0.0).unwrap();
    assert!(s.get(id).unwrap().decide("anyone"));
    assert!(!s.get(id).unwrap().decide("vip"));
}

#[test]
fn legacy_mode_reproduces_the_original() {
    let mut s = RolloutSet::new();
    let mut c = cfg(65.0);
    c.hash = HashMode::Legacy;
    let (id, _) = s.start("api-agent", c, 0.0).unwrap();
    assert!(
        !s.get(id).unwrap().decide("anonymous"),
        "bucket 65 is not < 65"
    );
    s.set_percentage("api-agent", 6600, "", 0.0).unwrap();
    assert!(s.get(id).unwrap().decide("anonymous"));
}

fn slo_cfg() -> Config {
    Config {
        slo: Some(Slo {
            error_rate: Some(0.05),
            ..Slo::default()
        }),
        ..cfg(100.0)
    }
}

#[test]
fn without_auto_rollback_a_breach_is_reported_and_nothing_moves() {
    let mut s = RolloutSet::new();
    let c = Config {
        slo: Some(Slo {
            error_rate: Some(0.05),
            ..Slo::default()
        }),
        ..Config::default()
    };
    assert!(!c.auto_rollback, "off by default, as the original");
    let (id, _) = s.start("r", c, 0.0).unwrap();
    for i in 0..20 {
        assert_eq!(
            s.record_checked(id, true, false, 5.0, i as f64),
            Some(vec![]),
            "not judged on record"
        );
    }
    let ev = s.evaluate(id, 20.0);
    assert_eq!(
        ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
        ["breach"]
    );
    assert_eq!(s.get(id).unwrap().percentage(), 100.0);
}

#[test]
fn a_breach_acts_on_the_request_that_makes_it() {
    let mut s = RolloutSet::new();
    let (id, _) = s.start("r", slo_cfg(), 0.0).unwrap();
    // Successes never start an error-rate breach; the 11th brings the window to min_samples.
    for i in 0..10 {
        assert_eq!(
            s.record_checked(id, true, i != 3, 5.0, i as f64),
            Some(vec![]),
            "request {i}"
        );
    }
    let ev = s.record_checked(id, true, true, 5.0, 10.0).unwrap();
    assert_eq!(
        ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
        ["breach", "rollback"],
        "1/11 > 0.05 on the 11th"
    );
    // Stable outcomes and unknown ids are only recorded.
    let (id2, _) = s.start("q", slo_cfg(), 0.0).unwrap();
    for i in 0..50 {
        assert_eq!(
            s.record_checked(id2, false, false, 5.0, i as f64),
            Some(vec![])
        );
    }
    assert_eq!(s.record_checked(99, true, false, 5.0, 0.0), None);
    // A latency breach acts on the slow request that makes it.
    let lat = Config {
        slo: Some(Slo {
            latency: Some((0.99, 100.0)),
            ..Slo::default()
        }),
        ..cfg(100.0)
    };
    let (id3, _) = s.start("p", lat, 0.0).unwrap();
    for i in 0..10 {
        assert!(s
            .record_checked(id3, true, true, 5.0, i as f64)
            .unwrap()
            .is_empty());
    }
    assert!(
        s.record_checked(id3, true, true, 5.0, 10.0)
            .unwrap()
            .is_empty(),
        "11 fast samples: healthy"
    );
    let ev = s.record_checked(id3, true, true, 150.0, 11.0).unwrap();
    assert_eq!(
        ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
        ["breach", "rollback"]
    );
}

#[test]
fn outcomes_recorded_one_by_one_still_advance_steps_on_the_deferred_evaluation() {
    let mut s = RolloutSet::new();
    let steps = vec![
        Step {
            bp: 5000,
            min_duration_ms: 0.0,
            min_requests: 10,
        },
        Step {
            bp: BUCKETS,
            min_duration_ms: 0.0,
            min_requests: 0,
        },
    ];
    let c = Config {
        steps,
        min_samples: 5,
        ..slo_cfg()
    };
    let (id, _) = s.start("plan", c, 0.0).unwrap();
    for i in 0..20 {
        assert_eq!(
            s.record_checked(id, true, true, 5.0, i as f64),
            Some(vec![])
        );
    }
    assert_eq!(
        s.get(id).unwrap().config.bp,
        5000,
        "no analysis on healthy outcomes"
    );
    let ev = s.evaluate_pending(20.0);
    assert_eq!(
        ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
        ["advance"]
    );
    assert_eq!(s.get(id).unwrap().config.bp, BUCKETS);
    assert!(
        s.evaluate_pending(21.0).is_empty(),
        "nothing pending any more"
    );
}

#[test]
fn an_empty_name_is_a_rollout_as_in_the_original() {
    let mut s = RolloutSet::new();
    let mut c = cfg(77.0);
    c.hash = HashMode::Legacy;
    let (id, _) = s.start("", c, 0.0).unwrap();
    // The original's vector: ("", "anonymous") hashes to bucket 77.
    assert_eq!(s.get(id).unwrap().bucket("anonymous"), 7700);
    assert!(!s.get(id).unwrap().decide("anonymous"));
    assert!(s.start(&"x".repeat(257), cfg(1.0), 0.0).is_err());
}

#[test]
fn the_originals_example_rolls_back_on_the_eleventh_request() {
    let mut s = RolloutSet::new();
    let (id, _) = s.start("r", slo_cfg(), 0.0).unwrap();
    for i in 0..10 {
        s.record(id, true, i != 3, 5.0, i as f64);
        assert!(
            s.evaluate(id, i as f64).is_empty(),
            "inconclusive before 11 samples"
        );
    }
    assert!(matches!(
        s.get(id).unwrap().last_verdict,
        Verdict::Inconclusive(_)
    ));
    s.record(id, true, true, 5.0, 10.0);
    let ev = s.evaluate(id, 10.0);
    assert_eq!(
        ev.iter().map(|e| e.entry.kind).collect::<Vec<_>>(),
        ["breach", "rollback"]
    );
    let r = s.get(id).unwrap();
    assert_eq!((r.config.bp, r.phase), (0, RolloutPhase::RolledBack));
    assert!(
        ev[1].entry.reason.starts_with("error rate 0.0909 > 0.05"),
        "{}",
        ev[1].entry.reason
    );
    assert_eq!(ev[1].entry.figures.as_ref().unwrap().requests, 11);
}

#[test]
fn latency_ceiling_uses_the_quantile_without_false_breaches() {
    let mut s = RolloutSet::new();
    let mut c = cfg(100.0);
    c.slo = Some(Slo {
        latency: Some((0.99, 100.0)),
        ..Slo::default()
    });
    let (id, _) = s.start("r", c.clone(), 0.0).unwrap();
    for _ in 0..10 {
        s.record(id, true, true, 5.0, 1.0);
    }
    s.record(id, true, true, 100.0, 1.0);
    assert!(
        s.evaluate(id, 2.0).is_empty(),
        "exactly at the ceiling is not a breach"
    );
    s.record(id, true, true, 101.0, 3.0);
    let ev = s.evaluate(id, 3.0);
    assert_eq!(ev.len(), 2, "{:?}", s.get(id).unwrap().last_verdict);
    assert!(
        ev[0].entry.reason.starts_with("p99 latency 10"),
        "{}",
        ev[0].entry.reason
    );
}

#[test]
fn low_traffic_is_inconclusive_and_never_advances() {
    let mut s = RolloutSet::new();
    let mut c = slo_cfg();
    c.steps = vec![
        Step {
            bp: 100,
            min_duration_ms: 0.0,
            min_requests: 0,
        },
        Step {
            bp: 2500,
            min_duration_ms: 0.0,
            min_requests: 0,
        },
    ];
    let (id, _) = s.start("r", c, 0.0).unwrap();
    assert_eq!(
        s.get(id).unwrap().config.bp,
        100,
        "starts at the first step"
    );
    for t in 0..100 {
        assert!(s.evaluate(id, t as f64 * 1000.0).is_empty());
    }
    assert_eq!(s.get(id).unwrap().config.bp, 100, "no data, no advance");
    for _ in 0..5 {
        s.record(id, true, true, 1.0, 100_000.0);
    }
    assert!(s.evaluate(id, 100_000.0).is_empty(), "5 of 11 samples");
}

#[test]
fn healthy_steps_advance_after_their_duration_and_requests() {
    let mut s = RolloutSet::new();
    let mut c = slo_cfg();
    c.steps = [1.0, 5.0, 25.0, 100.0]
        .iter()
        .map(|&p| Step {
            bp: (p * 100.0) as u32,
            min_duration_ms: 1000.0,
            min_requests: 20,
        })
        .collect();
    let (id, _) = s.start("r", c, 0.0).unwrap();
    let mut t = 0.0;
    let mut seen = vec![];
    while t < 10_000.0 {
        for _ in 0..10 {
            s.record(id, true, true, 2.0, t);
        }
        for e in s.evaluate(id, t) {
            seen.push((e.entry.kind, e.entry.to_bp, t));
        }
        t += 250.0;
    }
    assert_eq!(
        seen.iter().map(|x| x.1).collect::<Vec<_>>(),
        [500, 2500, 10_000]
    );
    assert!(seen.iter().all(|x| x.0 == "advance"));
    assert_eq!(seen[0].2, 1000.0, "not before the step's minimum duration");
    assert_eq!(s.get(id).unwrap().phase, RolloutPhase::Completed);
}

#[test]
fn rollback_to_the_last_good_step() {
    let mut s = RolloutSet::new();
    let mut c = slo_cfg();
    c.rollback_to = RollbackTarget::LastGoodStep;
    c.steps = [5.0, 25.0, 50.0]
        .iter()
        .map(|&p| Step {
            bp: (p * 100.0) as u32,
            min_duration_ms: 0.0,
            min_requests: 11,
        })
        .collect();
    let (id, _) = s.start("r", c, 0.0).unwrap();
    for _ in 0..11 {
        s.record(id, true, true, 1.0, 0.0);
    }
    assert_eq!(s.evaluate(id, 0.0)[0].entry.to_bp, 2500);
    // Now 25 % fails; the window still holds the healthy samples, so fail hard.
    for _ in 0..40 {
        s.record(id, true, false, 1.0, 1.0);
    }
    let ev = s.evaluate(id, 1.0);
    assert_eq!(ev.last().unwrap().entry.kind, "rollback");
    assert_eq!(
        ev.last().unwrap().entry.to_bp,
        500,
        "back to 5 %, the last step judged healthy"
    );
}

#[test]
fn multi_window_burn_rate_needs_both_windows() {
    // 99.9 % availability, page at 14.4x over 60 s and 5 s (the SRE workbook's
    // 1 h / 5 min pair, scaled down so the test moves time in seconds).
    let burn_cfg = || {
        let mut c = cfg(100.0);
        c.window_ms = 1000.0;
        c.slo = Some(Slo {
            availability: Some(0.999),
            burn_windows: vec![BurnWindow {
                long_ms: 60_000.0,
                short_ms: 5_000.0,
                factor: 14.4,
            }],
            ..Slo::default()
        });
        c
    };
    let feed = |s: &mut RolloutSet, id: usize, from: f64, to: f64, error_every: usize| {
        let mut t = from;
        while t < to {
            for k in 0..100 {
                s.record(id, true, error_every == 0 || k % error_every != 0, 1.0, t);
            }
            t += 1000.0;
        }
    };
    let mut s = RolloutSet::new();
    // Long window hot, short window cool: an old problem, already over. No page.
    let (a, _) = s.start("a", burn_cfg(), 0.0).unwrap();
    feed(&mut s, a, 0.0, 55_000.0, 33); // ~3 % errors: burn ~30x
    feed(&mut s, a, 55_000.0, 60_000.0, 0);
    assert!(s.evaluate(a, 59_999.0).is_empty());
    let (long, short) = s.get(a).unwrap().last_figures.burn_rates[0];
    assert!(long > 14.4 && short < 14.4, "{long} {short}");
    // Short window hot, long window cool: a blip. No page yet.
    let (b, _) = s.start("b", burn_cfg(), 0.0).unwrap();
    feed(&mut s, b, 0.0, 59_000.0, 0);
    for k in 0..100 {
        s.record(b, true, k % 2 == 0, 1.0, 59_000.0);
    }
    assert!(s.evaluate(b, 59_000.0).is_empty());
    let (long, short) = s.get(b).unwrap().last_figures.burn_rates[0];
    assert!(long < 14.4 && short > 14.4, "{long} {short}");
    // The blip goes on: both windows burn. Page, and roll back.
    for k in 0..400 {
        s.record(b, true, k % 2 == 0, 1.0, 59_500.0);
    }
    let ev = s.evaluate(b, 59_500.0);
    assert_eq!(
        ev.last().map(|e| e.entry.kind),
        Some("rollback"),
        "{:?}",
        s.get(b).unwrap().last_figures
    );
    assert!(
        ev[0].entry.reason.starts_with("error budget burning at"),
        "{}",
        ev[0].entry.reason
    );
    // Brute-force check of the figures: 250 errors of 6,400 requests in the long window.
    let (long, _) = s.get(b).unwrap().last_figures.burn_rates[0];
    assert!((long - (250.0 / 6400.0) / 0.001).abs() < 1e-6, "{long}");
}

#[test]
fn compared_with_the_stable_cohort() {
    let mut s = RolloutSet::new();
    let mut c = cfg(50.0);
    c.slo = Some(Slo {
        max_error_rate_increase: Some(0.02),
        ..Slo::default()
    });
    let (id, _) = s.start("r", c, 0.0).unwrap();
    for k in 0..100 {
        s.record(id, false, k % 10 != 0, 1.0, 0.0); // stable: 10 % errors (a bad day for everyone)
        s.record(id, true, k % 10 != 0 && k != 5, 1.0, 0.0); // new: 11 %
    }
    assert!(
        s.evaluate(id, 0.0).is_empty(),
        "11 % vs 10 % is within 2 points"
    );
    for _ in 0..30 {
        s.record(id, true, false, 1.0, 0.0);
    }
    let ev = s.evaluate(id, 0.0);
    assert!(
        ev[0].entry.reason.contains("exceeds the stable cohort's"),
        "{}",
        ev[0].entry.reason
    );
}

#[test]
fn manual_actions_and_bad_input() {
    let mut s = RolloutSet::new();
    let (id, _) = s.start("r", slo_cfg(), 0.0).unwrap();
    s.action("r", "pause", "", 0.0).unwrap();
    for _ in 0..20 {
        s.record(id, true, false, 1.0, 0.0);
    }
    assert!(
        s.evaluate(id, 0.0).is_empty(),
        "paused: no automatic action"
    );
    s.action("r", "resume", "", 0.0).unwrap();
    assert_eq!(s.evaluate(id, 0.0).len(), 2);
    s.action("r", "promote", "", 1.0).unwrap();
    assert_eq!(s.get(id).unwrap().config.bp, BUCKETS);
    s.action("r", "rollback", "fast", 2.0).unwrap();
    assert_eq!(s.get(id).unwrap().config.bp, 0);
    assert!(s.action("r", "explode", "", 0.0).is_err());
    assert_eq!(
        s.action("nope", "pause", "", 0.0).unwrap_err().message,
        "Rollout not found: nope"
    );
    assert_eq!(
        percent_to_bp("percentage", 150.0).unwrap_err().message,
        "percentage must be a number from 0 to 100, got 150"
    );
    assert!(percent_to_bp("percentage", f64::NAN).is_err());
    assert_eq!(percent_to_bp("percentage", 0.01).unwrap(), 1);
    let mut bad = cfg(10.0);
    bad.steps = vec![
        Step {
            bp: 500,
            min_duration_ms: 0.0,
            min_requests: 0,
        },
        Step {
            bp: 100,
            min_duration_ms: 0.0,
            min_requests: 0,
        },
    ];
    assert!(s
        .start("x", bad.clone(), 0.0)
        .unwrap_err()
        .message
        .starts_with("steps[1].percentage must be greater than steps[0].percentage (5)"));
    bad.steps.clear();
    bad.slo = Some(Slo {
        error_rate: Some(1.5),
        ..Slo::default()
    });
    assert!(s
        .start("x", bad.clone(), 0.0)
        .unwrap_err()
        .message
        .starts_with("slo.errorRate"));
    bad.slo = Some(Slo {
        availability: Some(0.999),
        burn_windows: vec![BurnWindow {
            long_ms: 1000.0,
            short_ms: 5000.0,
            factor: 2.0,
        }],
        ..Slo::default()
    });
    assert!(s
        .start("x", bad.clone(), 0.0)
        .unwrap_err()
        .message
        .starts_with("slo.burnRateWindows[0].longMs"));
    bad.slo = Some(Slo {
        availability: Some(0.999),
        burn_windows: vec![BurnWindow {
            long_ms: 30.0 * 86_400_000.0,
            short_ms: 10.0,
            factor: 2.0,
        }],
        ..Slo::default()
    });
    assert!(s
        .start("x", bad, 0.0)
        .unwrap_err()
        .message
        .starts_with("slo.burnRateWindows must be windows needing"));
    assert!(s.id_of("x").is_none(), "nothing half-applied");
}
