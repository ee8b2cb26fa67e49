//! Exposition: the families as data (`model`) and the formats that render
//! them. Collectors build a `Vec<Family>`; each format is a renderer beside it.

pub mod model;
pub mod negotiate;
pub mod protobuf;
