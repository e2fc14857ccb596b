use super::*;
use secrecy::ExposeSecret;

fn env(pairs: &[(&str, &str)]) -> EnvSource {
    EnvSource::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)))
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    load(&env(pairs), &Overrides::default())
}

#[test]
fn seed_multi_account_variables() {
    let cfg = load_env(&[
        ("AMAZONQ_ACCOUNT_COUNT", "2"),
        ("AMAZONQ_ACCOUNT_1_ID", "primary"),
        ("AMAZONQ_ACCOUNT_1_REFRESH_TOKEN", "r1"),
        ("AMAZONQ_ACCOUNT_1_CLIENT_ID", "c1"),
        ("AMAZONQ_ACCOUNT_1_CLIENT_SECRET", "s1"),
        ("AMAZONQ_ACCOUNT_1_WEIGHT", "5"),
        ("AMAZONQ_ACCOUNT_2_REFRESH_TOKEN", "r2"),
        ("AMAZONQ_ACCOUNT_2_CLIENT_ID", "c2"),
        ("AMAZONQ_ACCOUNT_2_CLIENT_SECRET", "s2"),
        ("AMAZONQ_ACCOUNT_2_ENABLED", "false"),
        (
            "AMAZONQ_ACCOUNT_2_PROFILE_ARN",
            "arn:aws:codewhisperer:eu-central-1:1:profile/X",
        ),
        ("LOAD_BALANCE_STRATEGY", "least_used"),
        ("CIRCUIT_BREAKER_ERROR_THRESHOLD", "7"),
        ("CIRCUIT_BREAKER_RECOVERY_TIMEOUT", "60"),
    ])
    .unwrap();
    assert_eq!(cfg.accounts.len(), 2);
    assert_eq!(cfg.accounts[0].id().to_string(), "primary");
    assert_eq!(cfg.accounts[0].settings.weight, 5);
    assert_eq!(cfg.accounts[1].id().to_string(), "account_2");
    assert!(!cfg.accounts[1].settings.enabled);
    assert_eq!(cfg.accounts[1].settings.weight, 10);
    assert_eq!(cfg.pool.strategy, qgate_pool::Strategy::LeastUsed);
    assert_eq!(cfg.pool.breaker.error_threshold, 7);
    assert_eq!(cfg.pool.breaker.recovery_timeout_ms, 60_000);
    assert_eq!(
        cfg.accounts[1].api_base(&cfg.upstream),
        "https://q.eu-central-1.amazonaws.com"
    );
    assert_eq!(
        cfg.accounts[0].api_base(&cfg.upstream),
        "https://q.us-east-1.amazonaws.com"
    );
}

#[test]
fn seed_defaults() {
    let cfg = load_env(&[
        ("AMAZONQ_REFRESH_TOKEN", "r"),
        ("AMAZONQ_CLIENT_ID", "c"),
        ("AMAZONQ_CLIENT_SECRET", "s"),
    ])
    .unwrap();
    assert_eq!(cfg.accounts.len(), 1);
    assert_eq!(cfg.accounts[0].id().to_string(), "default");
    assert_eq!(cfg.server.port, 8080);
    assert!(cfg.server.host.is_loopback());
    assert_eq!(cfg.pool.strategy, qgate_pool::Strategy::WeightedRoundRobin);
    assert!(cfg.pool.breaker.enabled);
    assert_eq!(cfg.pool.breaker.error_threshold, 5);
    assert_eq!(cfg.pool.breaker.recovery_timeout_ms, 300_000);
    assert_eq!(cfg.health_check_interval, Duration::from_secs(300));
    assert_eq!(cfg.upstream.token_endpoint, DEFAULT_TOKEN_ENDPOINT);
}

#[test]
fn every_problem_is_reported_at_once_naming_the_variable() {
    let err = load_env(&[
        ("AMAZONQ_ACCOUNT_COUNT", "2"),
        ("AMAZONQ_ACCOUNT_1_REFRESH_TOKEN", "r1"),
        ("AMAZONQ_ACCOUNT_1_CLIENT_ID", "c1"),
        ("AMAZONQ_ACCOUNT_2_ID", "../etc"),
        ("LOAD_BALANCE_STRATEGY", "fastest"),
        ("PORT", "eighty"),
        ("CIRCUIT_BREAKER_ENABLED", "maybe"),
    ])
    .unwrap_err();
    let sources: Vec<&str> = err.0.iter().map(|p| p.source.as_str()).collect();
    for expected in [
        "AMAZONQ_ACCOUNT_1_CLIENT_SECRET",
        "AMAZONQ_ACCOUNT_2_ID",
        "AMAZONQ_ACCOUNT_2_REFRESH_TOKEN",
        "LOAD_BALANCE_STRATEGY",
        "PORT",
        "CIRCUIT_BREAKER_ENABLED",
    ] {
        assert!(
            sources.contains(&expected),
            "missing {expected} in {sources:?}"
        );
    }
    let text = err.to_string();
    assert!(
        !text.contains("r1"),
        "a secret leaked into the error: {text}"
    );
}

#[test]
fn toml_file_accounts_and_sections() {
    let file = FileConfig::parse(
        r#"
        token_cache_dir = "/tmp/qgate-test-cache"
        [upstream]
        first_event_timeout = "15s"
        max_attempts = 4
        [pool]
        strategy = "latency"
        [[accounts]]
        id = "kiro-1"
        dialect = "kiro"
        refresh_token = "rt"
        region = "eu-central-1"
        priority = 1
        max_concurrency = 4
        rpm_limit = 60
        allowed_models = ["claude-sonnet-4.5"]
        "#,
        "test.toml",
    )
    .unwrap();
    let cfg = env::build(&file, &EnvSource::default()).unwrap();
    let a = &cfg.accounts[0];
    assert_eq!(a.dialect, Dialect::Kiro);
    assert!(matches!(a.credentials, Credentials::KiroSocial { .. }));
    assert_eq!(a.settings.priority, 1);
    assert_eq!(a.settings.max_concurrency, Some(4));
    assert_eq!(a.settings.rpm_limit, Some(60));
    assert_eq!(
        a.api_base(&cfg.upstream),
        "https://q.eu-central-1.amazonaws.com"
    );
    assert_eq!(cfg.upstream.first_event_timeout, Duration::from_secs(15));
    assert_eq!(cfg.dispatch.max_attempts, 4);
    assert_eq!(cfg.pool.strategy, qgate_pool::Strategy::Latency);
    assert_eq!(cfg.token_cache_dir, PathBuf::from("/tmp/qgate-test-cache"));
}

#[test]
fn unknown_toml_keys_are_rejected() {
    let err = FileConfig::parse("[pool]\nstrategee = \"random\"\n", "x.toml").unwrap_err();
    assert!(err.to_string().contains("strategee"), "{err}");
}

#[test]
fn env_overrides_file_and_duplicate_ids_are_caught() {
    let file = FileConfig::parse(
        "[[accounts]]\nid = \"default\"\nrefresh_token = \"a\"\nclient_id = \"b\"\nclient_secret = \"c\"\n[server]\nport = 9000\n",
        "f.toml",
    )
    .unwrap();
    let e = env(&[
        ("PORT", "9100"),
        ("AMAZONQ_REFRESH_TOKEN", "r"),
        ("AMAZONQ_CLIENT_ID", "c"),
        ("AMAZONQ_CLIENT_SECRET", "s"),
    ]);
    let err = env::build(&file, &e).unwrap_err();
    assert!(err.to_string().contains("duplicate account id"), "{err}");
    let file = FileConfig::parse("[server]\nport = 9000\n", "f.toml").unwrap();
    let cfg = env::build(&file, &e).unwrap();
    assert_eq!(cfg.server.port, 9100);
}

#[test]
fn secrets_never_show_in_debug() {
    let cfg = load_env(&[
        ("AMAZONQ_REFRESH_TOKEN", "refresh-SECRET-1"),
        ("AMAZONQ_CLIENT_ID", "client-id"),
        ("AMAZONQ_CLIENT_SECRET", "client-SECRET-2"),
        ("ADMIN_API_KEY", "admin-SECRET-3"),
        ("API_KEYS", "key-SECRET-4,key-SECRET-5"),
    ])
    .unwrap();
    let dbg = format!("{cfg:?}");
    for s in [
        "refresh-SECRET-1",
        "client-SECRET-2",
        "admin-SECRET-3",
        "key-SECRET-4",
    ] {
        assert!(!dbg.contains(s), "{s} leaked into Debug");
    }
    assert_eq!(cfg.security.api_keys.len(), 2);
    assert_eq!(cfg.security.api_keys[1].key.expose_secret(), "key-SECRET-5");
}

#[test]
fn durations_accept_seconds_and_humantime() {
    let cfg = load_env(&[
        ("HEALTH_CHECK_INTERVAL", "90"),
        ("UPSTREAM_IDLE_TIMEOUT", "2m"),
    ])
    .unwrap();
    assert_eq!(cfg.health_check_interval, Duration::from_secs(90));
    assert_eq!(cfg.upstream.idle_timeout, Duration::from_secs(120));
}

#[test]
fn workers_default_to_one_per_cpu_and_take_a_number_or_shared() {
    let base = [
        ("AMAZONQ_REFRESH_TOKEN", "r"),
        ("AMAZONQ_CLIENT_ID", "c"),
        ("AMAZONQ_CLIENT_SECRET", "s"),
    ];
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(load_env(&base).unwrap().server.workers.threads(), cpus);
    let with = |v: &str| {
        let mut pairs = base.to_vec();
        pairs.push(("WORKERS", v));
        load_env(&pairs)
    };
    assert_eq!(with("3").unwrap().server.workers.threads(), 3);
    assert_eq!(with("shared").unwrap().server.workers, Workers::Shared);
    assert_eq!(with("AUTO").unwrap().server.workers.threads(), cpus);
    for bad in ["0", "-1", "many", "100000"] {
        let err = with(bad).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].source, "WORKERS");
        assert!(err.0[0].message.contains(bad), "{err}");
    }
    // The file takes a number or a word; the environment wins over it.
    let file = FileConfig::parse("[server]\nworkers = 2\n", "f.toml").unwrap();
    assert_eq!(
        env::build(&file, &env(&base))
            .unwrap()
            .server
            .workers
            .threads(),
        2
    );
    let file = FileConfig::parse("[server]\nworkers = \"shared\"\n", "f.toml").unwrap();
    assert_eq!(
        env::build(&file, &env(&base)).unwrap().server.workers,
        Workers::Shared
    );
    let mut pairs = base.to_vec();
    pairs.push(("WORKERS", "1"));
    assert_eq!(
        env::build(&file, &env(&pairs))
            .unwrap()
            .server
            .workers
            .threads(),
        1
    );
    let file = FileConfig::parse("[server]\nworkers = 0\n", "f.toml").unwrap();
    let err = env::build(&file, &env(&base)).unwrap_err();
    assert_eq!(err.0[0].source, "server.workers");
}

#[test]
fn upstream_pool_idle_defaults_and_takes_a_number_from_env_or_file() {
    let base = [
        ("AMAZONQ_REFRESH_TOKEN", "r"),
        ("AMAZONQ_CLIENT_ID", "c"),
        ("AMAZONQ_CLIENT_SECRET", "s"),
    ];
    assert_eq!(
        load_env(&base).unwrap().upstream.pool_idle,
        super::DEFAULT_POOL_IDLE
    );
    let with = |v: &str| {
        let mut pairs = base.to_vec();
        pairs.push(("UPSTREAM_POOL_IDLE", v));
        load_env(&pairs)
    };
    assert_eq!(with("0").unwrap().upstream.pool_idle, 0);
    assert_eq!(with("200").unwrap().upstream.pool_idle, 200);
    let err = with("lots").unwrap_err();
    assert_eq!(err.0[0].source, "UPSTREAM_POOL_IDLE");
    assert!(err.0[0].message.contains("lots"), "{err}");
    let file = FileConfig::parse("[upstream]\npool_idle = 8\n", "f.toml").unwrap();
    assert_eq!(
        env::build(&file, &env(&base)).unwrap().upstream.pool_idle,
        8
    );
}
