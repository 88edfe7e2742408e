//! `rebound classify`: the server's limits by default and constant memory on hostile lines.
