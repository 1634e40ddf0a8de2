"""Where data lives: the folders searched (`roots`), checked all-or-nothing downloads (`download`), the
full benchmarks' registry of files and sums (`benchmarks`), the layout of image-folder benchmarks on
disk (`image_folders`), and the check that a command's output can be written before it starts (`writable`)."""
