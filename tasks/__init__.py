"""What is learned: data, model, loss and test metric, one file per task. Tasks never import `solvers`: every
solve goes through the method they are handed (see tasks.base.Task)."""
