//! Contract suite every `VectorStore` backend must pass. (In progress.)
