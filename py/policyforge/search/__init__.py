"""The synthesis engine: controller, database (store), prompt builder, selector, generators."""
