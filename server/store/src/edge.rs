//! Embedded backend on qdrant-edge. (In progress.)
