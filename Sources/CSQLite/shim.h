#include <sqlite3.h>

/// `sqlite3_config` is variadic, which Swift cannot call: this sets the one option Hedgerow uses.
/// It must run before SQLite initialises; afterwards it returns SQLITE_MISUSE and changes nothing.
static inline int hedgerow_sqlite3_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
