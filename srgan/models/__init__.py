"""The paper's networks and losses (Section 2.2): generator, discriminator, the losses, and the
VGG19 feature layers of the content loss with their weights (`vgg`)."""
