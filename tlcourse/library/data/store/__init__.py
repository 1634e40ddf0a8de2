"""Where data lives: the folders searched (`roots`), checked all-or-nothing downloads (`download`), the
full benchmarks' registry of files and sums (`benchmarks`) and the layout of image-folder benchmarks on
disk (`image_folders`)."""
