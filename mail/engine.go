package mail

// Engine runs every mail operation over a Pool of IMAP connections and
// fresh SMTP connections. Create it with New and Close it at shutdown.
type Engine struct {
	*Pool
	threads *threadIndexes
	texts   *lru[textKey, readText]
}

// New returns an engine with cfg; zero fields of cfg take defaults.
func New(cfg Config) *Engine {
	return &Engine{Pool: NewPool(cfg), threads: newThreadIndexes(), texts: newLRU[textKey, readText](textCacheBytes)}
}
