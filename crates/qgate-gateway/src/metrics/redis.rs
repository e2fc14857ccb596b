//! Multi-instance mode gauges, read from the Redis connection's health at scrape time:
//! `qgate_redis_up` (1 reachable, 0 not) and `qgate_redis_errors_total` (failed
//! operations since start: timeouts, lost connections, refused commands).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use qgate_store::redis::RedisStore;

/// Reads the store's health on every scrape.
#[derive(Debug)]
pub struct RedisCollector {
    redis: RedisStore,
}

impl RedisCollector {
    pub fn new(redis: RedisStore) -> Self {
        RedisCollector { redis }
    }
}

impl Collector for RedisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let health = self.redis.health();
        let up = ConstGauge::new(i64::from(health.is_up()));
        let metric = encoder.encode_descriptor(
            "qgate_redis_up",
            "1 when the shared Redis is reachable (multi-instance mode)",
            None,
            up.metric_type(),
        )?;
        up.encode(metric)?;
        let errors = ConstCounter::new(health.errors_total());
        let metric = encoder.encode_descriptor(
            "qgate_redis_errors",
            "Failed Redis operations (timeouts, lost connections, refused commands)",
            None,
            errors.metric_type(),
        )?;
        errors.encode(metric)
    }
}
