//! Tests of the IVR: config keys, the entry plan and every path through the menu, with a fake clock.
