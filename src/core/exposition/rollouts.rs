//! rollouts
