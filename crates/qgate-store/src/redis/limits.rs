//! Per-account limits across instances: the concurrency cap counts leases in
//! `inflight:{id}` (scored by lease expiry, so a dead instance's leases free themselves),
//! the requests-per-minute limit counts request ids in `rpm:{id}` (scored by start
//! time). Both are checked and taken in one Lua script, so two instances can never both
//! take the last unit, and a refused request takes nothing.
//!
//! Time is passed in (`now_ms`), as everywhere in the pool; instances are assumed to
//! have clocks within a few hundred milliseconds of each other (NTP).

use std::time::Duration;

use super::{RedisError, RedisStore};

/// The answer to [`RedisStore::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    Granted,
    /// The account has `max_concurrency` requests in flight across all instances.
    AtConcurrency,
    /// The account served `rpm_limit` requests in the last minute; the oldest of them
    /// leaves the window in `retry_after_ms`.
    AtRpm {
        retry_after_ms: u64,
    },
}

/// One lease held by this instance, for [`RedisStore::extend_leases`].
#[derive(Debug, Clone, Copy)]
pub struct LeaseRef<'a> {
    pub account: &'a str,
    pub lease_id: &'a str,
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RedisStore {
    /// Admit one request (`lease_id`, unique per request) to `account` under its limits
    /// across instances. `None` limits are not checked. The lease holds a concurrency
    /// unit until [`RedisStore::release`] or until `lease_ttl` passes without
    /// [`RedisStore::extend_leases`].
    pub async fn acquire(
        &self,
        account: &str,
        max_concurrency: Option<u32>,
        rpm_limit: Option<u32>,
        lease_id: &str,
        lease_ttl: Duration,
        now_ms: u64,
    ) -> Result<Acquire, RedisError> {
        if max_concurrency.is_none() && rpm_limit.is_none() {
            return Ok(Acquire::Granted);
        }
        let mut conn = self.conn();
        let mut call = self.scripts().acquire.prepare_invoke();
        call.key(self.keys().in_flight(account))
            .key(self.keys().rpm(account))
            .arg(now_ms)
            .arg(ms(lease_ttl).max(1))
            // A limit of 0 would mean "unlimited" to the script; no account is configured
            // with one (config validation), but refuse rather than open the gate.
            .arg(max_concurrency.map_or(0, |cap| cap.max(1)))
            .arg(rpm_limit.map_or(0, |limit| limit.max(1)))
            .arg(lease_id);
        let reply: Vec<u64> = self
            .run("acquire", async move { call.invoke_async(&mut conn).await })
            .await?;
        match reply.as_slice() {
            [1, ..] => Ok(Acquire::Granted),
            [0, 1, ..] => Ok(Acquire::AtConcurrency),
            [0, 2, retry_after_ms, ..] => Ok(Acquire::AtRpm {
                retry_after_ms: *retry_after_ms,
            }),
            _ => Err(RedisError::Malformed {
                op: "acquire",
                account: account.to_owned(),
            }),
        }
    }

    /// Give a concurrency unit back (the RPM entry stays: the request happened).
    pub async fn release(&self, account: &str, lease_id: &str) -> Result<(), RedisError> {
        let mut conn = self.conn();
        let key = self.keys().in_flight(account);
        let lease_id = lease_id.to_owned();
        self.run("release", async move {
            ::redis::cmd("ZREM")
                .arg(&key)
                .arg(&lease_id)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(drop)
    }

    /// Push the expiry of leases this instance still holds to `until_ms` (a heartbeat).
    /// Leases already released are not brought back.
    pub async fn extend_leases(
        &self,
        leases: &[LeaseRef<'_>],
        until_ms: u64,
        lease_ttl: Duration,
    ) -> Result<(), RedisError> {
        if leases.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for lease in leases {
            let key = self.keys().in_flight(lease.account);
            pipe.cmd("ZADD")
                .arg(&key)
                .arg("XX")
                .arg(until_ms)
                .arg(lease.lease_id)
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(ms(lease_ttl).max(1))
                .ignore();
        }
        let mut conn = self.conn();
        self.run("extend leases", async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// Requests of `account` in flight across instances at `now_ms`.
    pub async fn in_flight(&self, account: &str, now_ms: u64) -> Result<u64, RedisError> {
        let mut conn = self.conn();
        let key = self.keys().in_flight(account);
        self.run("count in flight", async move {
            ::redis::cmd("ZCOUNT")
                .arg(&key)
                .arg(format!("({now_ms}"))
                .arg("+inf")
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// Requests `account` started in the minute before `now_ms`, across instances.
    pub async fn rpm_used(&self, account: &str, now_ms: u64) -> Result<u64, RedisError> {
        let mut conn = self.conn();
        let key = self.keys().rpm(account);
        let since = now_ms.saturating_sub(60_000);
        self.run("count rpm", async move {
            ::redis::cmd("ZCOUNT")
                .arg(&key)
                .arg(format!("({since}"))
                .arg("+inf")
                .query_async(&mut conn)
                .await
        })
        .await
    }
}
