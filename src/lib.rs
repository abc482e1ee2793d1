pub mod map;
pub mod model;
pub mod profile;
pub mod report;
pub mod x12;
pub mod scrub;
