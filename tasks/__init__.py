"""What is learned: data, model, loss and test metric. Each module directly in this package is one task (a `Task`
subclass named by `conf/task/<name>.yaml`'s `_target_`), plus `base` (the interface, the shared argument checks and
the seed salts); a task's data come from `tasks.data`, its networks from `tasks.models`. Tasks never import
`solvers`: every solve goes through the method they are handed (see tasks.base.Task)."""
