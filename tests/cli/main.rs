//! CLI tests: the accrete binary end to end (train, resume, eval, predict, report, devices, bench) and its errors.

mod commands;
