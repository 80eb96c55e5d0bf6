from ssvae.train import main

main()
