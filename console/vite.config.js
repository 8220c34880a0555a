// The console is built into dist/ with relative asset paths (`base: "./"`), so the same files
// work at the local stack's `/` and under any prefix of an S3 bucket behind CloudFront.
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

export default defineConfig({
  base: "./",
  plugins: [vue()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inline script anywhere: the Content-Security-Policy allows scripts from our origin only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: "es2022",
    sourcemap: false,
  },
});
