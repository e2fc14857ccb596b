//! Every Lua script, so the atomic steps of the protocol can be read side by side.
//! Scripts run atomically on the server: no other command interleaves with one.

use ::redis::Script;

/// Take the refresh lock if nobody holds it, with a new fencing token.
/// KEYS: lock, fence counter. ARGV: ttl ms. Returns the fence, or 0 when held.
const LOCK_REFRESH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return fence
";

/// Release the lock only if it is still ours (compare-and-delete).
/// KEYS: lock. ARGV: fence. Returns 1 when released.
const UNLOCK_REFRESH: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Write a token record only if `fence` is still the newest one handed out, so a holder
/// that stalled past its lock cannot overwrite what a later holder wrote.
/// KEYS: token, fence counter. ARGV: fence, exp, data, at. Returns 1 when written.
const SAVE_TOKEN_FENCED: &str = r"
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'exp', ARGV[2], 'fence', ARGV[1], 'at', ARGV[4])
return 1
";

/// Write a token record outside the lock (shutdown, start-up) only if it is not older
/// than the stored one, judged by access-token expiry.
/// KEYS: token. ARGV: exp, data, at. Returns 1 when written.
const SAVE_TOKEN_IF_NEWER: &str = r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'exp') or '-1')
if tonumber(ARGV[1]) < stored then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'exp', ARGV[1], 'fence', '0', 'at', ARGV[3])
return 1
";

/// Store an account's shared state unless a newer one is stored, and announce it.
/// KEYS: state. ARGV: record JSON, stamp ms, channel, message. Returns 1 when stored.
const PUBLISH_STATE: &str = r"
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, doc = pcall(cjson.decode, stored)
  if ok and type(doc) == 'table' and tonumber(doc.stamp_ms) and tonumber(doc.stamp_ms) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

/// Admit one request to an account under its concurrency cap and RPM limit, or refuse
/// without changing anything (a refusal consumes no budget).
/// KEYS: inflight zset, rpm zset. ARGV: now ms, lease ttl ms, max concurrency (0 = none),
/// rpm limit (0 = none), lease id.
/// Returns {1} when admitted, {0, 1, 0} at the concurrency cap, {0, 2, retry_ms} at the RPM
/// limit (retry_ms: until the oldest request leaves the window).
const ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= cap then return {0, 1, 0} end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[2]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local retry = 0
    if oldest[2] then retry = math.max(0, tonumber(oldest[2]) + 60000 - now) end
    return {0, 2, retry}
  end
end
if cap > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if rpm > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return {1}
";

/// Replace the admin record, bump its version and announce the version.
/// KEYS: admin record, admin version. ARGV: sealed record, origin, channel, and the
/// version the writer's document is based on ('-': write whatever is stored). With a base,
/// the write happens only if the stored version is still that base or nothing is stored
/// (a Redis that lost its data); otherwise it returns 0 and writes nothing: another
/// instance wrote first, and the writer must merge its changes into that document.
/// Returns the new version: above the stored one and never below the server's clock in
/// milliseconds, so a Redis that lost its data (restarted without persistence) still
/// hands out versions above every one the instances saw before.
const WRITE_ADMIN: &str = r"
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[4] ~= '-' and current ~= 0 and current ~= tonumber(ARGV[4]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local version = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if version < now then version = now end
redis.call('SET', KEYS[2], version)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({kind = 'admin', origin = ARGV[2], version = version}))
return version
";

/// The scripts, hashed once (`EVALSHA`, loaded on first use and after a server restart).
pub(crate) struct Scripts {
    pub lock_refresh: Script,
    pub unlock_refresh: Script,
    pub save_token_fenced: Script,
    pub save_token_if_newer: Script,
    pub publish_state: Script,
    pub acquire: Script,
    pub write_admin: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            lock_refresh: Script::new(LOCK_REFRESH),
            unlock_refresh: Script::new(UNLOCK_REFRESH),
            save_token_fenced: Script::new(SAVE_TOKEN_FENCED),
            save_token_if_newer: Script::new(SAVE_TOKEN_IF_NEWER),
            publish_state: Script::new(PUBLISH_STATE),
            acquire: Script::new(ACQUIRE),
            write_admin: Script::new(WRITE_ADMIN),
        }
    }
}
