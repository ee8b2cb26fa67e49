//! watchdogs
