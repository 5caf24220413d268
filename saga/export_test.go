package saga

// SetBeforeReplyCommit lets a test act between HandleReply's read of a saga
// and its commit.
func SetBeforeReplyCommit(e *Engine, f func()) { e.beforeReplyCommit = f }
