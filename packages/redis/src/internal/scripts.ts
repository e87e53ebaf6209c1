/**
 * The Lua scripts of the Redis metadata store. Each runs atomically on the server and touches the keys of one
 * namespace only, which share the hash tag `{ns}`, so each script stays in one slot of a Redis Cluster. ioredis
 * sends them by SHA (`EVALSHA`) and loads them once on `NOSCRIPT`.
 *
 * Keys of namespace `ns` under prefix `P`:
 * - `P{ns}:e:<hash>`  HASH   the entry record, PEXPIRE = TTL
 * - `P{ns}:lru`       ZSET   hash → last access (server time, µs, strictly increasing)
 * - `P{ns}:exp`       ZSET   hash → expiry (server time, ms), so a commit can drop expired entries before evicting
 * - `P{ns}:obj`       HASH   hash → object key, outliving the record, so expired entries' objects can be deleted
 * - `P{ns}:lock:<h>`  STRING stampede lock token, PX
 * - `P{ns}:locks`     SET    hashes that may hold a lock, so a namespace can be removed without SCAN
 *
 * @since 0.1.0
 */

// Server time in µs, forced above the highest score already in the LRU index: two accesses in one microsecond (or a
// clock step back) still keep their order, which a ms score from the clients' clocks would not.
const accessScore = `
local function accessScore(lru)
  local t = redis.call("TIME")
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local top = redis.call("ZREVRANGE", lru, 0, 0, "WITHSCORES")
  if top[2] ~= nil and tonumber(top[2]) >= now then return tonumber(top[2]) + 1 end
  return now
end
local function nowMs()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// Drop one entry from every index; returns its object key (or nil).
const dropEntry = `
local function dropEntry(entryKey, lru, exp, obj, member, out)
  redis.call("DEL", entryKey)
  local objectKey = redis.call("HGET", obj, member)
  if objectKey then table.insert(out, objectKey) end
  redis.call("HDEL", obj, member)
  redis.call("ZREM", lru, member)
  redis.call("ZREM", exp, member)
end
`

/**
 * KEYS: entry, lru, lock, locks. ARGV: hash, token, lockTtlMs.
 * Returns `{1, fields}` (hit), `{2}` (lock acquired) or `{3}` (busy).
 *
 * @internal
 */
export const lookup = `${accessScore}
local fields = redis.call("HGETALL", KEYS[1])
if #fields > 0 then
  redis.call("ZADD", KEYS[2], accessScore(KEYS[2]), ARGV[1])
  return {1, fields}
end
local holder = redis.call("GET", KEYS[3])
if (not holder) or holder == ARGV[2] then
  redis.call("SET", KEYS[3], ARGV[2], "PX", ARGV[3])
  redis.call("SADD", KEYS[4], ARGV[1])
  return {2}
end
return {3}
`

/**
 * KEYS: entry, lru, exp, obj, lock, locks.
 * ARGV: hash, token ("" for none), maxEntries, ttlMs, entry key prefix, object key, then field, value, ….
 * Returns `{evicted, {obsolete object keys}}`.
 *
 * @internal
 */
export const commit = `${accessScore}${dropEntry}
local hash, token, maxEntries, ttlMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, objectKey = ARGV[5], ARGV[6]
local obsolete = {}
local previous = redis.call("HGET", KEYS[4], hash)
if previous and previous ~= objectKey then table.insert(obsolete, previous) end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], unpack(ARGV, 7))
redis.call("PEXPIRE", KEYS[1], ttlMs)
local now = nowMs()
redis.call("ZADD", KEYS[2], accessScore(KEYS[2]), hash)
redis.call("ZADD", KEYS[3], now + ttlMs, hash)
redis.call("HSET", KEYS[4], hash, objectKey)
-- expired entries first (not counted as evicted), then the least recently accessed beyond maxEntries
for _, member in ipairs(redis.call("ZRANGEBYSCORE", KEYS[3], "-inf", now)) do
  dropEntry(prefix .. member, KEYS[2], KEYS[3], KEYS[4], member, obsolete)
end
local evicted = 0
local excess = redis.call("ZCARD", KEYS[2]) - maxEntries
if excess > 0 then
  for _, member in ipairs(redis.call("ZRANGE", KEYS[2], 0, excess - 1)) do
    dropEntry(prefix .. member, KEYS[2], KEYS[3], KEYS[4], member, obsolete)
    evicted = evicted + 1
  end
end
if token ~= "" and redis.call("GET", KEYS[5]) == token then
  redis.call("DEL", KEYS[5])
  redis.call("SREM", KEYS[6], hash)
end
return {evicted, obsolete}
`

/**
 * KEYS: lock, locks. ARGV: hash, token.
 *
 * @internal
 */
export const releaseLock = `
if redis.call("GET", KEYS[1]) == ARGV[2] then
  redis.call("DEL", KEYS[1])
  redis.call("SREM", KEYS[2], ARGV[1])
end
return 0
`

/**
 * KEYS: entry keys. Returns one HGETALL reply per key.
 *
 * @internal
 */
export const getMany = `
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call("HGETALL", key) end
return out
`

/**
 * KEYS: lru, exp, obj, then one entry key per hash. ARGV: the hashes. Returns the object keys of removed entries.
 *
 * @internal
 */
export const remove = `${dropEntry}
local out = {}
for i, member in ipairs(ARGV) do
  dropEntry(KEYS[3 + i], KEYS[1], KEYS[2], KEYS[3], member, out)
end
return out
`

/**
 * One batch of removing a namespace, so a large namespace never blocks Redis for long.
 * KEYS: lru, exp, obj, locks. ARGV: entry key prefix, lock key prefix, batch size.
 * Returns `{done (0/1), {object keys}}`; the last batch also removes the indexes and the locks.
 *
 * @internal
 */
export const removeNamespaceBatch = `${dropEntry}
local out = {}
local members = redis.call("ZRANGE", KEYS[1], 0, tonumber(ARGV[3]) - 1)
for _, member in ipairs(members) do
  dropEntry(ARGV[1] .. member, KEYS[1], KEYS[2], KEYS[3], member, out)
end
if #members < tonumber(ARGV[3]) then
  for _, objectKey in ipairs(redis.call("HVALS", KEYS[3])) do table.insert(out, objectKey) end
  for _, member in ipairs(redis.call("SMEMBERS", KEYS[4])) do redis.call("DEL", ARGV[2] .. member) end
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  return {1, out}
end
return {0, out}
`

/**
 * KEYS: lru, exp. Live entries: those indexed, less those past their expiry. Read-only.
 *
 * @internal
 */
export const size = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call("ZCARD", KEYS[1]) - redis.call("ZCOUNT", KEYS[2], "-inf", now)
`
