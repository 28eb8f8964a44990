"""The dashboard: server-rendered pages served beside `/v1` by `knobs serve`, charts drawn as
inline SVG from services/figures, no JavaScript build step and no script from elsewhere."""
