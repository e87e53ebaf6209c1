/**
 * The Lua scripts of the Redis metadata store. Each runs atomically on the server and touches the keys of one
 * namespace only, which share the hash tag `{ns}`, so each script stays in one slot of a Redis Cluster. ioredis
 * sends them by SHA (`EVALSHA`) and loads them once on `NOSCRIPT`.
 *
 * Keys of namespace `ns` under prefix `P`:
 * - `P{ns}:r:<hash>`  STRING the entry record (`record.ts`: a JSON header line, then an inline payload if any),
 *                            PEXPIRE = TTL
 * - `P{ns}:lru`       ZSET   hash → last access (server time, µs, strictly increasing)
 * - `P{ns}:exp`       ZSET   hash → expiry (server time, ms), so a commit can drop expired entries before evicting
 * - `P{ns}:obj`       HASH   hash → object key, outliving the record, so expired entries' objects can be deleted
 *                            (entries whose payload is inline have no object and no member here)
 * - `P{ns}:lock:<h>`  STRING stampede lock token, PX
 * - `P{ns}:locked`    ZSET   hash → lock expiry (server time, ms): finds the locks of a namespace without SCAN, and
 *                            lets lapsed ones be pruned (it replaces the SET `P{ns}:locks`, which only grew)
 * - `Pnamespaces`     SET    known namespaces (another slot: written by a separate command, before each commit and
 *                            before the first lock of a namespace that has no index yet)
 * - `Pid`             STRING the store id (another slot: a script of its own)
 *
 * No script starts with a `#!lua` shebang: Redis 7 refuses a shebang script without flags at `maxmemory` before it
 * runs, while a script without one runs, and a write that may grow memory is refused only while the script has
 * written nothing yet. So the first write of each script is chosen with care (then a refused script has written
 * nothing), and the LRU touch of a hit uses `redis.pcall`: at `maxmemory` under `noeviction` a hit stays a hit.
 *
 * @since 0.1.0
 */

// Server time in µs, forced above the highest score already in the LRU index: two accesses in one microsecond (or a
// clock step back) still keep their order, which a ms score from the clients' clocks would not.
const clock = `
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

// The obj index names the entry's object; it outlives an expired record, so the object of an expired entry is still
// reported. An entry stands in `out` even without an object (as ""), so that callers count the records removed.
const dropEntry = `
local function dropEntry(entryKey, lru, exp, obj, member, out)
  local existed = redis.call("DEL", entryKey) == 1
  local indexed = redis.call("HGET", obj, member)
  if indexed then table.insert(out, indexed) elseif existed then table.insert(out, "") end
  redis.call("HDEL", obj, member)
  redis.call("ZREM", lru, member)
  redis.call("ZREM", exp, member)
end
`

// A lock must not be taken in a namespace the registry may not list, or `clear` would miss the computation it guards;
// the registry lives in another slot, so the script cannot register it. It takes the lock only where the namespace
// shows it is registered (it has an LRU index or a lock index: a commit or a lock registered it first, and the last
// clearNamespace step deletes both) or the caller has just registered it (`registered` = "1"); otherwise it returns
// 4 and the caller registers the namespace and asks again. SET is the first write, so at maxmemory the script is
// refused before it writes anything. The index score is taken after the SET, so it is never below the lock's own
// expiry; members lapsed strictly before now are pruned. Returns 2 (held under token), 3 (busy) or 4 (unregistered).
const takeLock = `
local function takeLock(lock, locked, lru, member, token, ttlMs, registered)
  local holder = redis.call("GET", lock)
  if holder and holder ~= token then return 3 end
  if registered ~= "1" and redis.call("EXISTS", locked, lru) == 0 then return 4 end
  redis.call("SET", lock, token, "PX", ttlMs)
  local now = nowMs()
  redis.call("ZADD", locked, now + tonumber(ttlMs), member)
  redis.call("ZREMRANGEBYSCORE", locked, "-inf", "(" .. now)
  return 2
end
`

/**
 * KEYS: entry, lru, lock, locked. ARGV: hash, token, lockTtlMs, registered ("1" when the caller has just registered
 * the namespace), LRU resolution (µs). Returns `{1, record, age}` (hit), `{2}` (lock acquired), `{3}` (busy) or `{4}`
 * (register the namespace, then ask again).
 *
 * A hit is a read: the LRU score is written only when the one it has is older than the resolution (or when the
 * resolution is 0), so a hot key costs a ZSCORE, not a ZADD that reorders the index on every hit. `age`: how old the
 * entry's LRU score is after this hit, µs (0 when it was just written, -1 when unknown): until it reaches the
 * resolution, the client may read the record with a plain GET (`lookup.ts`).
 *
 * @internal
 */
export const lookup = `${clock}${takeLock}
local value = redis.call("GET", KEYS[1])
if value then
  local resolution = tonumber(ARGV[5])
  local touch = resolution == 0
  local age = -1
  if not touch then
    local score = redis.call("ZSCORE", KEYS[2], ARGV[1])
    local t = redis.call("TIME")
    if score then age = tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(score) end
    touch = not score or age >= resolution
  end
  -- best effort: a refused touch (maxmemory under noeviction) costs LRU precision, not the hit
  if touch then
    local done = redis.pcall("ZADD", KEYS[2], accessScore(KEYS[2]), ARGV[1])
    if type(done) == "table" and done.err then age = -1 else age = 0 end
  end
  return {1, value, age}
end
return {takeLock(KEYS[3], KEYS[4], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])}
`

/**
 * KEYS: lock, locked, lru. ARGV: hash, token, lockTtlMs, registered. Returns 2 (held under the token), 3 (busy) or 4
 * (register the namespace, then ask again).
 *
 * @internal
 */
export const acquireLock = `${clock}${takeLock}
return takeLock(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`

/**
 * KEYS: lock, locked. ARGV: hash, token, lockTtlMs. Returns 1 when the lock was held under the token and extended.
 *
 * @internal
 */
export const renewLock = `${clock}
if redis.call("GET", KEYS[1]) ~= ARGV[2] then return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
redis.call("ZADD", KEYS[2], nowMs() + tonumber(ARGV[3]), ARGV[1])
return 1
`

/**
 * KEYS: lock, locked. ARGV: hash, token.
 *
 * @internal
 */
export const releaseLock = `
if redis.call("GET", KEYS[1]) == ARGV[2] then
  redis.call("DEL", KEYS[1])
  redis.call("ZREM", KEYS[2], ARGV[1])
end
return 0
`

/**
 * Entries dropped per commit, at most, by each of the expiry sweep and the eviction: a namespace with a backlog (15k
 * expired entries, a lowered maxEntries) is worked off by later commits instead of blocking Redis in one.
 *
 * @internal
 */
export const commitBudget = 100

/**
 * How many members past the eviction quota a commit looks at, from the old end of the LRU index, before it evicts:
 * where Redis's own LRU eviction leaves ghosts. Each member costs about a microsecond on the server.
 *
 * @internal
 */
export const ghostLookAhead = 32

/**
 * KEYS: entry, lru, exp, obj, lock, locked.
 * ARGV: hash, token, maxEntries, ttlMs, entry key prefix, object key (`""`: inline), the record's value.
 * Returns `{0}` (lock lost: nothing written) or `{1, evicted, {obsolete object keys}}`.
 *
 * Ghosts: a ghost is an indexed hash whose record is gone before its expiry (Redis evicted it under a `volatile-*`
 * or `allkeys-*` policy, or someone deleted it). The index counts it as an entry, so before evicting, a commit checks
 * the oldest members (the eviction quota plus `ghostLookAhead`) with one EXISTS; if some are ghosts, it drops them
 * (their objects reported as obsolete, not counted as evicted), each lowering the excess by one, and evicts no live
 * entry in that commit unless it saw the whole index: ghosts at the old end suggest more behind them, and a later
 * commit looks again. A ghost further back counts as an entry until it reaches the old end or its expiry passes.
 *
 * @internal
 */
export const commit = `${clock}${dropEntry}
local hash, token, maxEntries, ttlMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, objectKey = ARGV[5], ARGV[6]
local budget, lookAhead = ${commitBudget}, ${ghostLookAhead}
if redis.call("GET", KEYS[5]) ~= token then return {0} end
local obsolete = {}
local indexed = redis.call("HGET", KEYS[4], hash)
if indexed and indexed ~= objectKey then table.insert(obsolete, indexed) end
-- the first write, so at maxmemory (noeviction) the commit is refused whole
redis.call("SET", KEYS[1], ARGV[7], "PX", ttlMs)
local now = nowMs()
redis.call("ZADD", KEYS[2], accessScore(KEYS[2]), hash)
redis.call("ZADD", KEYS[3], now + ttlMs, hash)
if objectKey == "" then redis.call("HDEL", KEYS[4], hash) else redis.call("HSET", KEYS[4], hash, objectKey) end
redis.call("DEL", KEYS[5])
redis.call("ZREM", KEYS[6], hash)
redis.call("ZREMRANGEBYSCORE", KEYS[6], "-inf", "(" .. now)
-- expired entries first (not counted as evicted)
for _, member in ipairs(redis.call("ZRANGEBYSCORE", KEYS[3], "-inf", now, "LIMIT", 0, budget)) do
  dropEntry(prefix .. member, KEYS[2], KEYS[3], KEYS[4], member, obsolete)
end
-- then the least recently accessed beyond maxEntries; expired entries the sweep left are not counted as live
local evicted = 0
local size = redis.call("ZCARD", KEYS[2])
local excess = size - redis.call("ZCOUNT", KEYS[3], "-inf", now) - maxEntries
if excess > 0 then
  local quota = math.min(excess, budget)
  local live = redis.call("ZRANGE", KEYS[2], 0, quota + lookAhead - 1)
  local entryKeys = {}
  for i, member in ipairs(live) do entryKeys[i] = prefix .. member end
  -- one EXISTS for the whole window; member by member only when it holds a ghost (or an expired entry)
  if #live > 0 and redis.call("EXISTS", unpack(entryKeys)) < #live then
    local window, ghosts = live, 0
    live = {}
    for i, member in ipairs(window) do
      if redis.call("EXISTS", entryKeys[i]) == 1 then
        table.insert(live, member)
      else
        local expiry = redis.call("ZSCORE", KEYS[3], member)
        -- an expired entry was never counted in the excess: it is left to the sweep
        if not (expiry and tonumber(expiry) <= now) then
          dropEntry(entryKeys[i], KEYS[2], KEYS[3], KEYS[4], member, obsolete)
          excess = excess - 1
          ghosts = ghosts + 1
        end
      end
    end
    if ghosts > 0 and #window < size then quota = 0 end
  end
  for i = 1, math.min(excess, quota, #live) do
    dropEntry(prefix .. live[i], KEYS[2], KEYS[3], KEYS[4], live[i], obsolete)
    evicted = evicted + 1
  end
end
return {1, evicted, obsolete}
`

/**
 * KEYS: entry keys. Returns one value per key (false, a nil reply, where there is none).
 *
 * @internal
 */
export const getMany = `
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call("GET", key) end
return out
`

/**
 * KEYS: lru, exp, obj, locked, then one entry key per hash, then one lock key per hash. ARGV: the hashes.
 * Returns the object keys of removed entries.
 *
 * @internal
 */
export const remove = `${dropEntry}
local n = #ARGV
local out = {}
for i, member in ipairs(ARGV) do
  dropEntry(KEYS[4 + i], KEYS[1], KEYS[2], KEYS[3], member, out)
  redis.call("DEL", KEYS[4 + n + i])
  redis.call("ZREM", KEYS[4], member)
end
return out
`

/**
 * KEYS: entry, lru, exp, obj. ARGV: hash, object key (`""` matches a record without one). Returns 1 when removed.
 *
 * The object key is the one the record itself names (its header), not the index's: the record judged bad may have
 * been written by hand or copied from another key, and a record that does not read names `""`, as `record.ts` says.
 *
 * @internal
 */
export const removeIf = `${dropEntry}
local value = redis.call("GET", KEYS[1])
if not value then return 0 end
local named = ""
local eol = string.find(value, "\\n", 1, true)
if eol then
  local ok, header = pcall(cjson.decode, string.sub(value, 1, eol - 1))
  if ok and type(header) == "table" and type(header.o) == "string" then named = header.o end
end
if named ~= ARGV[2] then return 0 end
dropEntry(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], {})
return 1
`

/**
 * One bounded step of clearing a namespace, so a large namespace never blocks Redis for long: every lock of the
 * namespace, then up to a batch of entries; the step that empties the namespace also removes its indexes.
 * KEYS: lru, exp, obj, locked, locks (the SET of earlier versions). ARGV: entry key prefix, lock key prefix, batch size.
 * Returns `{done (0/1), {object keys}}`.
 *
 * @internal
 */
export const clearNamespace = `${dropEntry}
for _, member in ipairs(redis.call("ZRANGE", KEYS[4], 0, -1)) do redis.call("DEL", ARGV[2] .. member) end
redis.call("DEL", KEYS[4])
local batch = tonumber(ARGV[3])
local out = {}
local members = redis.call("ZRANGE", KEYS[1], 0, batch)
for i = 1, math.min(#members, batch) do
  dropEntry(ARGV[1] .. members[i], KEYS[1], KEYS[2], KEYS[3], members[i], out)
end
if #members > batch then return {0, out} end
-- objects the obj index still names without an LRU member (none, unless the indexes were edited by hand)
for _, objectKey in ipairs(redis.call("HVALS", KEYS[3])) do table.insert(out, objectKey) end
redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])
-- the lock keys it lists expire on their own; it may be large, so it is freed off the main thread
redis.call("UNLINK", KEYS[5])
return {1, out}
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

/**
 * KEYS: the id key. ARGV: a fresh random id. Returns the stored id, storing the fresh one if there was none, so
 * concurrent first clients agree.
 *
 * @internal
 */
export const storeId = `
local id = redis.call("GET", KEYS[1])
if id then return id end
redis.call("SET", KEYS[1], ARGV[1])
return ARGV[1]
`
