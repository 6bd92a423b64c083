// esbuild bundles imported CSS into app.css; for the type-checker an import of it is just a side effect.
declare module '*.css';
